// Training the ranking stage: DIN-protocol instances, DNN or CAN, BCE / focal / GHM-C, Adam; validation
// and test evaluated after every epoch through the SDK on the exported file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/data/ctr_data.hpp"
#include "train/ranking/ctr_metrics.hpp"
#include "funnel/model.hpp"
#include "train/ranking/ctr_losses.hpp"
#include "train/ranking/ranker_config.hpp"
#include "train/distributed/communicator.hpp"

namespace funnel::train {

struct RankerEpoch {
  uint32_t epoch = 0;
  double loss = 0;                // mean training loss over the epoch
  double train_seconds = 0;       // the training loop only: shuffle, forward, backward, update
  double samples_per_second = 0;
  CtrMetrics validation, test;    // validation is all zero when the data has no validation split
};

struct RankerObserver {
  // Every few steps: epoch (1-based), step, steps per epoch, running loss, samples per second.
  std::function<void(uint32_t, size_t, size_t, double, double)> on_progress;
  std::function<void(const RankerEpoch&)> on_epoch;
};

struct RankerResult {
  std::vector<uint8_t> model_file;  // the model of the chosen epoch
  std::vector<RankerEpoch> history;
  uint32_t best_epoch = 0;          // best validation AUC (the earlier on ties); the last without validation
  CtrMetrics validation, test;      // of the chosen epoch
  size_t parameters = 0;
  size_t train_samples = 0;         // over all epochs
  double train_seconds = 0;
  double samples_per_second = 0;
  // Under mpirun with sharded tables: bytes this rank sent to the others through the tables' row exchange
  // (ids, rows, gradient rows; sharded_table.hpp), per step of this process's epochs.
  double exchange_bytes_per_step = 0;
};

class RankerModel;
class TrainingState;
struct Checkpoint;

// Checkpoints of a ranking run: one TrainingState (train/core/training_state.hpp) holding the parameters,
// Adam's moments, the shuffling generator, GHM-C's bin counts and the best epoch so far.
struct RankerCheckpoints {
  std::string checkpoint;  // written atomically after every epoch when not empty
  std::string resume;      // continue from this checkpoint when not empty
  // For a caller whose run holds more than this ranker (AutoFAS's teacher, search and student): fields the
  // checkpoint must match beside the ranker's own, and the caller's own parts, saved and restored with it.
  nlohmann::json identity = nlohmann::json::object();
  std::function<void(TrainingState&)> register_more;
  std::function<void(const std::string&)> on_note;  // "resumed from ... after epoch N"
  const Checkpoint* resume_read = nullptr;  // `resume`'s contents when the caller has read them already
};

// What a ranking run's checkpoint must match, as "<prefix><config field>" and the data's sizes: every config
// field but epochs (a resumed run may go on for longer) and threads (the speed, not the sums on one thread).
nlohmann::json ranker_identity(const CtrDataset& ctr, const RankerConfig& config, const std::string& prefix = "ranking.");

// Trains, keeps the epoch of the best validation AUC, exports it. With `extra_loss`, each batch's loss gets
// that term (a pre-ranking student's distillation). With `trained`, the model of the chosen epoch is handed
// over as well (AutoFAS searches on the trained teacher). A resumed run (`checkpoints.resume`) gives the
// uninterrupted run's file bit for bit on one thread; a checkpoint of another run (another dataset or config
// field but epochs and threads) is refused, naming the field.
// With a distributed `comm` (world() under mpirun) every rank calls it with the same data and config and trains
// its part of each global batch (ranker_parallel.hpp); rank 0 evaluates and gets the model file (the others an
// empty one; `trained` is complete on rank 0), each rank checkpoints to "<checkpoint>.rank<r>" and resumes from
// "<resume>.rank<r>" written by the same number of ranks.
RankerResult train_ranker(const CtrDataset& ctr, const RankerConfig& config, const RankerObserver& observer = {},
                          const LossTerm& extra_loss = {}, std::unique_ptr<RankerModel>* trained = nullptr,
                          const RankerCheckpoints& checkpoints = {}, Communicator& comm = local_communicator());

// AUC, GAUC and LogLoss of a split, scored by the SDK: each positive's group (it and its negatives share
// user and history) is one request of one user against its candidates.
CtrMetrics evaluate_ranker(const Model& model, const Dataset& data, const CtrInstances& instances, const CtrSplit& split);

}  // namespace funnel::train
