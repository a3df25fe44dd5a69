// Model::recommend: the stages of one file run in order (retrieval, pre-ranking, ranking), each timed, with
// the caller's filters applied before the first stage so that no later stage spends work on an item that
// may not be shown.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "funnel/model.hpp"
#include "top_k.hpp"

namespace funnel {

namespace {

using Clock = std::chrono::steady_clock;

double milliseconds_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

Status Model::recommend(const Features& user, const CascadeOptions& options, CascadeResult* out) const {
  const auto start = Clock::now();
  *out = {};
  if (options.k == 0) return {StatusCode::kInvalidArgument, "k must be at least 1"};
  const bool pre_ranks = pre_ranking_.present && !options.skip_pre_ranking, ranks = ranking_.present && !options.skip_ranking;
  if (!has_retrieval_ && !pre_ranks && !ranks)
    return {StatusCode::kInvalidArgument, "this model has no retrieval, pre-ranking or ranking stage (or the call skips them)"};

  // The candidates in the current order, best first once a stage has sorted them, with what is known of each.
  std::vector<std::string> candidates;  // as the ranking-like stages take them
  std::vector<std::string_view> keys;   // the same keys as the model stores them, so that they outlive the call
  std::vector<float> retrieval_scores, scores;
  if (has_retrieval_) {
    const auto stage_start = Clock::now();
    const size_t k1 = pre_ranks || ranks ? std::max(options.retrieve_k, options.k) : options.k;
    std::vector<Hit> hits;
    if (Status s = top_items(user, k1, options.exclude, options.allow, options.threads, &hits); !s) return s;
    for (const Hit& hit : hits) {
      keys.push_back(item_key(hit.index));
      candidates.emplace_back(keys.back());
      retrieval_scores.push_back(hit.score);
    }
    out->stages.push_back({"retrieval", catalogue_rows_, hits.size(), milliseconds_since(stage_start)});
  } else {
    if (options.candidates.empty())
      return {StatusCode::kInvalidArgument, "this model has no retrieval stage: pass the candidates to rank"};
    // The filters and the duplicates by item-table row, in sorted lists searched by bisection: the work grows
    // with the request, not with the item table (no per-row marks; no hash table code in the WASM package).
    const auto sorted_rows = [this](const std::vector<std::string>& list) {
      std::vector<int64_t> rows;
      for (const std::string& key : list)
        if (const int64_t row = find_ranking_item(key); row >= 0) rows.push_back(row);
      std::make_heap(rows.begin(), rows.end());
      std::sort_heap(rows.begin(), rows.end());
      return rows;
    };
    const std::vector<int64_t> allowed = sorted_rows(options.allow), excluded = sorted_rows(options.exclude);
    const bool allow_all = options.allow.empty();
    const auto listed = [](const std::vector<std::string>& list, const std::string& key) {
      return std::find(list.begin(), list.end(), key) != list.end();
    };
    std::vector<int64_t> rows(options.candidates.size());
    for (size_t i = 0; i < options.candidates.size(); ++i) {
      const std::string& key = options.candidates[i];
      rows[i] = find_ranking_item(key);
      // Unknown: an error, unless the filters leave the key out anyway.
      if (rows[i] < 0 && !((!allow_all && !listed(options.allow, key)) || listed(options.exclude, key)))
        return {StatusCode::kNotFound, "candidate '" + key + "' is not in the model's item table"};
    }
    // A row's first appearance among the candidates is kept, later ones dropped: (row, position) pairs, one
    // number each (rows and positions fit 32 bits), sorted, so the first of a run of equal rows is the earliest.
    std::vector<int64_t> by_row;
    for (size_t i = 0; i < rows.size(); ++i)
      if (rows[i] >= 0) by_row.push_back(rows[i] << 32 | static_cast<int64_t>(i));
    std::make_heap(by_row.begin(), by_row.end());
    std::sort_heap(by_row.begin(), by_row.end());
    std::vector<uint8_t> repeated(rows.size(), 0);
    for (size_t j = 1; j < by_row.size(); ++j)
      if (by_row[j] >> 32 == by_row[j - 1] >> 32) repeated[static_cast<size_t>(by_row[j] & 0xffffffff)] = 1;
    for (size_t i = 0; i < rows.size(); ++i) {
      const int64_t row = rows[i];
      if (row < 0 || repeated[i]) continue;
      if ((!allow_all && !std::binary_search(allowed.begin(), allowed.end(), row)) ||
          std::binary_search(excluded.begin(), excluded.end(), row))
        continue;
      keys.push_back(ranking_item_key(static_cast<size_t>(row)));
      candidates.push_back(options.candidates[i]);
    }
    retrieval_scores.assign(candidates.size(), std::numeric_limits<float>::quiet_NaN());
  }
  scores = retrieval_scores;

  // A ranking-like stage scores the candidates and passes on the best `keep`, best first (TopK: equal scores
  // keep the earlier stage's order, itself by score, then catalogue index; scores are finite, as
  // rank_candidates checks).
  const auto run_stage = [&](const RankingStageState& stage, const char* name, size_t keep) -> Status {
    if (candidates.empty()) return Status::ok();
    const auto stage_start = Clock::now();
    std::vector<float> stage_scores;
    // A retrieved item the item table lacks is scored with out-of-vocabulary features.
    if (Status s = rank_candidates(stage, user, options.behaviours, candidates, /*unknown_candidate_is_error=*/false, &stage_scores); !s)
      return s;
    TopK best(keep);
    for (size_t i = 0; i < candidates.size(); ++i) best.add({static_cast<uint32_t>(i), stage_scores[i]});
    std::vector<Hit> order;
    best.take_sorted(&order);
    const size_t scored = candidates.size();
    std::vector<std::string> next_candidates;
    std::vector<std::string_view> next_keys;
    std::vector<float> next_retrieval, next_scores;
    for (const Hit& hit : order) {
      next_candidates.push_back(std::move(candidates[hit.index]));
      next_keys.push_back(keys[hit.index]);
      next_retrieval.push_back(retrieval_scores[hit.index]);
      next_scores.push_back(hit.score);
    }
    candidates = std::move(next_candidates);
    keys = std::move(next_keys);
    retrieval_scores = std::move(next_retrieval);
    scores = std::move(next_scores);
    out->stages.push_back({name, scored, order.size(), milliseconds_since(stage_start)});
    return Status::ok();
  };
  // K2: what pre-ranking passes on when ranking follows (at least k).
  if (pre_ranks)
    if (Status s = run_stage(pre_ranking_, "pre_ranking", ranks ? std::max(options.prerank_k, options.k) : options.k); !s) return s;
  if (ranks)
    if (Status s = run_stage(ranking_, "ranking", options.k); !s) return s;

  const size_t count = std::min(options.k, keys.size());
  for (size_t i = 0; i < count; ++i) out->items.push_back({keys[i], scores[i], retrieval_scores[i]});
  out->milliseconds = milliseconds_since(start);
  return Status::ok();
}

}  // namespace funnel
