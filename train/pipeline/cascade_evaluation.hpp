// What each stage of a funnel file adds to what the user finally sees: for every held-out user (leave-last-
// out), the file's cascade through the SDK (Model::recommend) with the user's raw features, their history as
// the behaviour sequence and as the items never to return, in three configurations: retrieval alone,
// retrieval then ranking, and retrieval then pre-ranking then ranking; the final top-k quality of each and
// the time per request of each stage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "funnel/model.hpp"
#include "train/data/dataset.hpp"
#include "train/data/split.hpp"
#include "train/retrieval/evaluation.hpp"

namespace funnel::train {

struct CascadeRow {
  std::string stages;       // "retrieval", "retrieval+ranking" or "retrieval+pre_ranking+ranking"
  size_t retrieve_k = 0;    // K1 (0 for retrieval alone)
  size_t prerank_k = 0;     // K2 (0 without pre-ranking)
  uint32_t k = 0;
  size_t users = 0;         // held-out users scored
  double recall = 0;        // Recall@k; with one held-out item per user, HitRate@k is the same number
  double ndcg = 0;          // NDCG@k
  double hit_rate = 0;
  double retrieval_ms = 0, pre_ranking_ms = 0, ranking_ms = 0, total_ms = 0;  // mean per request

  nlohmann::json to_json() const;
};

struct CascadeGrid {
  uint32_t k = 10;
  std::vector<size_t> retrieve_k = {100, 500, 1000};
  std::vector<size_t> prerank_k = {50, 100, 200};  // pairs with K2 >= K1 are left out
  size_t threads = 0;                              // users scored at once (0: every core)
};

// Rows for the configurations the file's stages allow: retrieval alone once, retrieval + ranking per K1,
// the whole cascade per (K1, K2). Needs a retrieval stage. Throws DataError naming a user whose features
// the model refuses.
std::vector<CascadeRow> evaluate_cascade(const Model& model, const Dataset& data, const Split& split, Holdout holdout,
                                         const CascadeGrid& grid);

// The requests evaluate_cascade sends, one JSON line per held-out user: {"user": raw features, "behaviours":
// [item keys, oldest first; also the items never to return], "held": the held-out item's key}, so that
// another runtime can replay the same grid (wasm/tools/eval_cascade.mjs, in WebAssembly).
std::string cascade_requests_jsonl(const Dataset& data, const Split& split, Holdout holdout);

}  // namespace funnel::train
