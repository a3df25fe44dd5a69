// Model::recommend: the stages of one file run in order, each timed, with the caller's filters applied
// before the first stage so that no later stage spends work on an item that may not be shown.
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
  if (!has_retrieval_ && !has_ranking_) return {StatusCode::kInvalidArgument, "this model has neither a retrieval nor a ranking stage"};

  std::vector<std::string> candidates;  // as the ranking stage takes them
  std::vector<std::string_view> keys;   // the same keys as the model stores them, so that they outlive the call
  std::vector<float> retrieval_scores;
  if (has_retrieval_) {
    const auto stage_start = Clock::now();
    const size_t k1 = has_ranking_ ? std::max(options.retrieve_k, options.k) : options.k;
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

  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::vector<float> final_scores = retrieval_scores;
  if (has_ranking_ && !candidates.empty()) {
    const auto stage_start = Clock::now();
    if (Status s = rank_candidates(user, options.behaviours, candidates, /*unknown_candidate_is_error=*/false, &final_scores); !s)
      return s;
    // Stable: equal probabilities keep the retrieval order (itself by score, then catalogue index).
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return final_scores[a] > final_scores[b]; });
    out->stages.push_back({"ranking", candidates.size(), std::min(options.k, candidates.size()), milliseconds_since(stage_start)});
  }

  order.resize(std::min(options.k, order.size()));
  for (size_t i : order) out->items.push_back({keys[i], final_scores[i], retrieval_scores[i]});
  out->milliseconds = milliseconds_since(start);
  return Status::ok();
}

}  // namespace funnel
