// Training the two-tower retrieval model: Adam over mini-batches of positives, validation through the SDK
// after every epoch, the best epoch kept, checkpoints through one TrainingState.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "train/data/dataset.hpp"
#include "train/data/interaction_stream.hpp"
#include "train/data/split.hpp"
#include "train/distributed/communicator.hpp"
#include "train/export/export.hpp"
#include "train/retrieval/evaluation.hpp"
#include "train/retrieval/feature_drift.hpp"
#include "train/retrieval/two_tower_config.hpp"

namespace funnel::train {

struct EpochRecord {
  uint32_t epoch = 0;
  double loss = 0;                // mean training loss (the main task's) over the epoch
  double ssl_loss = 0;            // mean L_self over the epoch (unweighted; 0 without the auxiliary task)
  double samples_per_second = 0;  // training loop only (no evaluation)
  double learning_rate = 0;       // at the epoch's last step
  long steps = 0;                 // optimiser steps so far
  bool cbns_active = false;       // whether the memory bank was in use at the epoch's end
  std::vector<DriftRecord> drift;  // the epoch's feature-drift probes
  RetrievalMetrics validation;
};

struct TrainObserver {
  // Called every few steps: epoch (1-based), step within the epoch, steps per epoch, running loss,
  // samples per second so far in this epoch.
  std::function<void(uint32_t, size_t, size_t, double, double)> on_progress;
  std::function<void(const EpochRecord&)> on_epoch;
  std::function<void(const std::string&)> on_note;  // one-off events: CBNS switched on, early stop, resume
};

struct TrainOptions {
  // Written atomically after every epoch when not empty; in a distributed run a set of one file per rank
  // and a manifest, saved in two phases (train/distributed/rank_checkpoint.hpp), as the ranker's.
  std::string checkpoint;
  // Continue from this checkpoint when not empty (distributed: each rank reads its own file, written by a
  // run of the same number of ranks; another number is refused).
  std::string resume;
  Metadata metadata;       // joins the model file's own metadata (the config, metrics, history)
  TrainObserver observer;  // distributed: called on rank 0 only
  // The processes that train together (docs/distributed.md); nullptr: this process alone (local_communicator),
  // even under mpirun: only a caller that means to train across ranks (the CLI's `train`) passes world(). Distributed, batch_size is per rank and the global batch is batch_size x
  // ranks; only rank 0 evaluates, exports (model_file) and reports.
  Communicator* communicator = nullptr;
};

struct TrainResult {
  std::vector<uint8_t> model_file;  // the exported model of the best epoch (distributed: rank 0's; empty elsewhere)
  std::vector<EpochRecord> history;
  uint32_t best_epoch = 0;
  bool stopped_early = false;
  long cbns_start_step = -1;  // the step CBNS started at (-1: never)
  RetrievalMetrics test;
  RetrievalMetrics popular_test;  // the most-popular baseline on the same users
  double train_seconds = 0;
  double samples_per_second = 0;
  size_t train_interactions = 0;  // after train_fraction
  uint64_t exchange_bytes = 0;     // distributed: bytes this rank's row exchange sent to other ranks
  uint64_t allreduce_bytes = 0;    // distributed: payload bytes of replicated gradients this rank all-reduced
  long steps = 0;                  // optimiser steps this run took
  uint64_t dropped_rows = 0;       // distributed, each rank on its own shards: rows past the smallest rank's
                                   // count, over the ranks, dropped each epoch (docs/distributed.md)
  uint64_t step_collectives = 0;   // distributed: collective MPI calls this rank made in its steps (batch to
                                   // all-reduce; drift probes aside), Communicator::collective_calls()
};

// Trains, evaluates validation after each epoch through the SDK, keeps the epoch with the best
// validation Recall@select_k (the earlier on ties), and reports test metrics of that epoch. Throws
// TrainingError when the loss stops being finite; the last checkpoint is then the last good epoch.

TrainResult train_two_tower(const Dataset& data, const Split& split, const TrainConfig& config, const TrainOptions& options = {});
// The same loop over rows from elsewhere (a prepared folder's ShuffledShards, one rank's shards): `split`
// gives the holdouts, the training counts (logQ, drift probes) and the evaluation's exclusions, `rows` the
// training interactions. train_fraction is the in-memory overload's alone.
TrainResult train_two_tower(const Dataset& data, const Split& split, InteractionBatches& rows, const TrainConfig& config,
                            const TrainOptions& options = {});

}  // namespace funnel::train
