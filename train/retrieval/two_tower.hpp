// The two-tower retrieval model: a user tower and an item tower, scored by in-batch sampled softmax (logQ
// corrected), optionally with Cross-Batch Negative Sampling negatives. Its training loop is
// two_tower_training.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "train/data/dataset.hpp"
#include "train/retrieval/sampled_softmax.hpp"
#include "train/retrieval/self_supervised.hpp"
#include "train/retrieval/tower_net.hpp"
#include "train/retrieval/two_tower_config.hpp"

namespace funnel::train {

class TwoTowerModel {
 public:
  // `shard_over`: a distributed run with sharded tables; both towers' embedding tables are sharded by row over its
  // ranks from the start (TowerNet), and the self-supervised task's second encoder reads the item tower's shards.
  TwoTowerModel(const Dataset& data, const TrainConfig& config, Communicator* shard_over = nullptr);

  // The self-supervised auxiliary task, when config.ssl is not "none" (nullptr otherwise).
  SelfSupervisedTask* self_supervised() { return ssl_.get(); }
  TowerNet& user_tower() { return user_; }
  TowerNet& item_tower() { return item_; }
  const TowerNet& user_tower() const { return user_; }
  const TowerNet& item_tower() const { return item_; }
  std::vector<Parameter*> parameters();
  // The parameters whole on every rank of a distributed run: all but the towers' table shards.
  std::vector<Parameter*> replicated_parameters();
  // Per parameter (parameters()' order), the rows of the whole table it holds rows of (a shard: its table's),
  // so every rank picks the same optimiser for a table (TrainerOptimizer); 0 for a dense parameter.
  std::vector<size_t> whole_rows();

 private:
  Rng rng_;
  TowerNet user_;
  TowerNet item_;
  std::unique_ptr<SelfSupervisedTask> ssl_;
};

// Mean loss and gradients for one batch of (user row, item row) positives, with optional memory-bank
// negatives. The batch's item embeddings stay readable in model.item_tower().output(). With `backward` and
// the self-supervised task on, its step runs too (on its own batch) and `ssl_loss` receives L_self; the
// return value is the main task's loss. With `backward` it is global_negatives_step on one process.
double two_tower_step(TwoTowerModel& model, std::span<const uint32_t> users, std::span<const uint32_t> items,
                      std::span<const float> log_q, const TrainConfig& config, bool backward, const NegativeBank& bank = {},
                      double* ssl_loss = nullptr);

}  // namespace funnel::train
