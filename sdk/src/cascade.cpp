// Model::recommend: the stages of one file run in order (retrieval, pre-ranking, ranking), each timed, with
// the caller's filters applied before the first stage so that no later stage spends work on an item that
// may not be shown.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "funnel/model.hpp"

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
    const std::unordered_set<std::string_view> allow(options.allow.begin(), options.allow.end());
    const std::unordered_set<std::string_view> exclude(options.exclude.begin(), options.exclude.end());
    std::unordered_set<std::string_view> seen;
    for (const std::string& key : options.candidates) {
      if (!allow.empty() && !allow.count(key)) continue;
      if (exclude.count(key) || !seen.insert(key).second) continue;
      const int64_t row = find_ranking_item(key);
      if (row < 0) return {StatusCode::kNotFound, "candidate '" + key + "' is not in the model's item table"};
      keys.push_back(ranking_item_key(static_cast<size_t>(row)));
      candidates.push_back(key);
    }
    retrieval_scores.assign(candidates.size(), std::numeric_limits<float>::quiet_NaN());
  }
  scores = retrieval_scores;

  // A ranking-like stage scores the candidates, sorts them (stable: equal scores keep the earlier stage's
  // order, itself by score, then catalogue index) and passes on the best `keep`.
  const auto run_stage = [&](const RankingStageState& stage, const char* name, size_t keep) -> Status {
    if (candidates.empty()) return Status::ok();
    const auto stage_start = Clock::now();
    std::vector<float> stage_scores;
    // A retrieved item the item table lacks is scored with out-of-vocabulary features.
    if (Status s = rank_candidates(stage, user, options.behaviours, candidates, /*unknown_candidate_is_error=*/false, &stage_scores); !s)
      return s;
    std::vector<size_t> order(candidates.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return stage_scores[a] > stage_scores[b]; });
    const size_t scored = order.size();
    order.resize(std::min(keep, scored));
    std::vector<std::string> next_candidates;
    std::vector<std::string_view> next_keys;
    std::vector<float> next_retrieval, next_scores;
    for (size_t i : order) {
      next_candidates.push_back(std::move(candidates[i]));
      next_keys.push_back(keys[i]);
      next_retrieval.push_back(retrieval_scores[i]);
      next_scores.push_back(stage_scores[i]);
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
