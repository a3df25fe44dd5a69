// The whole funnel in one call (Model::recommend): retrieve K1 candidates, pre-rank them to K2, rank those,
// keep the best K, with each stage's time. Works with whichever stages the file holds: retrieval alone
// returns its top K; without retrieval the first stage that the file holds scores the candidates the caller
// passes (pre-ranking alone keeps its best K; pre-ranking then ranking passes K2 on, as after retrieval).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace funnel {

struct CascadeOptions {
  size_t k = 10;            // items returned
  size_t retrieve_k = 200;  // K1: what retrieval passes on when a pre-ranking or ranking stage follows (at least k)
  size_t prerank_k = 50;    // K2: what pre-ranking passes on when a ranking stage follows (at least k)
  // The user's behaviour sequence for the pre-ranking and ranking stages: item keys, oldest first. Unknown
  // keys count with out-of-vocabulary features, as in Model::rank.
  std::vector<std::string> behaviours;
  // The items to rank when the file has no retrieval stage (an unknown key is then an error).
  std::vector<std::string> candidates;
  // Never returned: items the user has already seen. Keys the model does not know are ignored.
  std::vector<std::string> exclude;
  // When not empty, only these may be returned (retrieval scans the catalogue with everything else left
  // out). Keys the model does not know are ignored.
  std::vector<std::string> allow;
  // Threads that scan the catalogue (funnel/search.hpp, SearchOptions::threads); 1 keeps the call on the
  // caller's thread, 0 uses every hardware thread.
  size_t threads = 1;
  // Stages the file holds that this call leaves out, to measure what each adds (`funnel eval`): a left-out
  // stage passes its candidates on as they come.
  bool skip_pre_ranking = false;
  bool skip_ranking = false;
};

struct StageReport {
  std::string_view stage;  // "retrieval", "pre_ranking" or "ranking"
  size_t scored = 0;       // items the stage scored
  size_t kept = 0;         // items it passed on
  double milliseconds = 0;
};

struct CascadeItem {
  std::string_view key;     // points into the model; valid while the model lives
  float score;              // the last stage's: a click probability after (pre-)ranking, an inner product after retrieval
  float retrieval_score;    // NaN when the file has no retrieval stage
};

struct CascadeResult {
  std::vector<CascadeItem> items;  // best first; ties keep the earlier stage's order
  std::vector<StageReport> stages;
  double milliseconds = 0;  // the whole call
};

}  // namespace funnel
