// Two-tower retrieval: a user tower and an item tower trained with in-batch sampled softmax (logQ
// corrected), optionally with Cross-Batch Negative Sampling, and Adam.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "train/retrieval/two_tower_config.hpp"
#include "train/data/dataset.hpp"
#include "train/retrieval/evaluation.hpp"
#include "train/retrieval/feature_drift.hpp"
#include "train/retrieval/sampled_softmax.hpp"
#include "train/retrieval/self_supervised.hpp"
#include "train/data/split.hpp"
#include "train/retrieval/tower_net.hpp"

namespace funnel::train {

class TwoTowerModel {
 public:
  TwoTowerModel(const Dataset& data, const TrainConfig& config);

  // The self-supervised auxiliary task, when config.ssl is not "none" (nullptr otherwise).
  SelfSupervisedTask* self_supervised() { return ssl_.get(); }
  TowerNet& user_tower() { return user_; }
  TowerNet& item_tower() { return item_; }
  const TowerNet& user_tower() const { return user_; }
  const TowerNet& item_tower() const { return item_; }
  std::vector<Parameter*> parameters();

 private:
  Rng rng_;
  TowerNet user_;
  TowerNet item_;
  std::unique_ptr<SelfSupervisedTask> ssl_;
};

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
  std::string checkpoint;  // written atomically after every epoch when not empty
  std::string resume;      // continue from this checkpoint when not empty
  TrainObserver observer;
};

struct TrainResult {
  std::vector<uint8_t> model_file;  // the exported model of the best epoch
  std::vector<EpochRecord> history;
  uint32_t best_epoch = 0;
  bool stopped_early = false;
  long cbns_start_step = -1;  // the step CBNS started at (-1: never)
  RetrievalMetrics test;
  RetrievalMetrics popular_test;  // the most-popular baseline on the same users
  double train_seconds = 0;
  double samples_per_second = 0;
  size_t train_interactions = 0;  // after train_fraction
};

// Trains, evaluates validation after each epoch through the SDK, keeps the epoch with the best
// validation Recall@select_k (the earlier on ties), and reports test metrics of that epoch. Throws
// TrainingError when the loss stops being finite; the last checkpoint is then the last good epoch.
TrainResult train_two_tower(const Dataset& data, const Split& split, const TrainConfig& config, const TrainOptions& options = {});

// Mean loss and gradients for one batch of (user row, item row) positives, with optional memory-bank
// negatives. The batch's item embeddings stay readable in model.item_tower().output(). With `backward` and
// the self-supervised task on, its step runs too (on its own batch) and `ssl_loss` receives L_self; the
// return value is the main task's loss.
double two_tower_step(TwoTowerModel& model, std::span<const uint32_t> users, std::span<const uint32_t> items,
                      std::span<const float> log_q, const TrainConfig& config, bool backward, const NegativeBank& bank = {},
                      double* ssl_loss = nullptr);

}  // namespace funnel::train
