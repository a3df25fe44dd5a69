// Global negatives for a data-parallel run (docs/distributed.md): each rank encodes its part of the global
// batch, the item embeddings (with the items' ids and log q, gathered by the caller) are all-gathered, and
// every rank's users are scored against every item of the global batch, so the in-batch softmax of CBNS
// eq. 3-4 (logQ corrected, accidental hits masked) spans world x batch_size columns as one process with the
// global batch would. The loss is normalised by the global batch; the gradient with respect to the gathered
// item embeddings is summed over the ranks and each rank backpropagates the rows of its own items. With 1
// rank (local_communicator) this is the in-batch softmax: two_tower_step is that case.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "train/distributed/communicator.hpp"
#include "train/retrieval/two_tower.hpp"

namespace funnel::train {

struct GlobalBatch {
  std::vector<uint32_t> items;  // the global batch's items, rank by rank
  std::vector<float> log_q;     // log q of each
  size_t first = 0;             // this rank's rows: items[first .. first + count)
  size_t count = 0;
  std::vector<float> embeddings;  // written by the step: the gathered item embeddings [items, dim] (for the bank)
};

// One step's forward and backward over this rank's users (`users`, whose positives are batch.items[first..])
// against the global batch, plus the bank's columns. Sharded tables fetch their rows before and push their
// gradients after; replicated parameters' gradients are left for GradientAllReduce. Collective. Returns the
// global batch's mean loss (the same on every rank). With the self-supervised task on, its step runs too, on
// its own global batch split over the ranks (SelfSupervisedTask::draw), and `ssl_loss` receives L_self.
// The sampled softmax's options of a config (eq. 3-4: temperature, logQ correction, accidental hits).
SampledSoftmaxOptions softmax_options(const TrainConfig& config);

double global_negatives_step(TwoTowerModel& model, Communicator& comm, std::span<const uint32_t> users, GlobalBatch& batch,
                             const TrainConfig& config, const NegativeBank& bank, double* ssl_loss = nullptr);

}  // namespace funnel::train
