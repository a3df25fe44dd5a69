// The whole funnel from one dataset (`funnel train-funnel`): the two-tower retrieval stage, the CAN ranking
// stage and the AutoFAS pre-ranking student searched on it (with a latency table measured here unless one
// is given), all on one split of the data (each user's last interaction is the test, the one before it
// validation: leave_last_out for retrieval, the DIN protocol for ranking), written as one file.
//
// Each stage writes its own file into a work folder as soon as it is trained (retrieval.funnel,
// ranking.funnel with the pre-ranking and ranking stages), and the funnel file joins them (Model::bundle).
// A resumed run reuses every stage file whose recorded config still matches, the ranking teacher's cache
// and the last epoch checkpoints of the retrieval stage and of the AutoFAS run (its teacher's and its
// student's epochs), so that a stopped run loses at most an epoch (or the search, which it repeats).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/pipeline/funnel_config.hpp"
#include "train/pre_ranking/autofas_training.hpp"
#include "train/retrieval/two_tower_training.hpp"

namespace funnel::train {

struct FunnelTrainingOptions {
  std::string work_dir;  // required; created when missing
  bool resume = false;   // reuse what an earlier run of the same config left in work_dir
  TrainObserver retrieval;
  AutoFasObservers pre_ranking;
  std::function<void(const std::string&)> on_note;  // a stage starts, is reused, a table is measured
};

struct FunnelTrainingResult {
  std::vector<uint8_t> model_file;              // the three stages in one file
  std::unique_ptr<TrainResult> retrieval;       // null when the stage file was reused
  std::unique_ptr<AutoFasResult> pre_ranking;   // null when the stage file was reused
  std::string retrieval_file, ranking_file;     // the stage files in work_dir
  std::string latency_table;                    // the table the search used
  AutoFasConfig pre_ranking_config;             // the search's config as run (its teacher cache, its table)
};

FunnelTrainingResult train_funnel(const Dataset& data, const FunnelConfig& config, const FunnelTrainingOptions& options);

}  // namespace funnel::train
