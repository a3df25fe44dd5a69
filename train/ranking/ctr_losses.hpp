// CTR losses over a batch of logits: BCE, focal (Lin et al.), GHM-C (Li et al., ghm.cpp). Each returns
// the batch loss and writes d loss / d logit for every instance.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace funnel::train {

// Mean binary cross-entropy of sigmoid(logit), computed stably from the logit. `denominator` (0: the batch
// size) is what the sum is divided by: a data-parallel rank passes the global batch's size, so that its
// part of the loss and its gradients are exactly those of one process holding the global batch.
float bce_loss(std::span<const float> logits, std::span<const float> labels, std::span<float> dlogits, double denominator = 0);

struct FocalOptions {
  float gamma = 2.0f;   // focusing parameter; 0 gives alpha-weighted BCE
  float alpha = 0.25f;  // weight of positives (1 - alpha for negatives), RetinaNet's convention
};

// Mean of -alpha_t (1 - p_t)^gamma log p_t.
// `denominator` as for bce_loss.
float focal_loss(std::span<const float> logits, std::span<const float> labels, const FocalOptions& options,
                 std::span<float> dlogits, double denominator = 0);

// Sums values over the processes of a data-parallel run, in place (train/distributed/); every process calls it
// at the same point.
using BatchSum = std::function<void(std::span<double>)>;

// GHM-C (eq. 3-8) with the bin-count EMA of the official code; the state persists across batches.
class GhmC {
 public:
  explicit GhmC(uint32_t bins = 30, float momentum = 0.75f);
  // With `global`, this batch is one rank's part of a global batch: the bin counts and the batch size N are
  // summed over the ranks before the densities, so every rank sees the global histogram (the same EMA, the
  // same weights) and returns its part of the global loss; `global` is called even for an empty part.
  float loss(std::span<const float> logits, std::span<const float> labels, std::span<float> dlogits, const BatchSum& global = {});

  uint32_t bins() const { return static_cast<uint32_t>(accumulated_.size()); }
  // The EMA of bin counts (for checkpoints and tests).
  const std::vector<float>& accumulated() const { return accumulated_; }
  void restore(std::vector<float> accumulated);

 private:
  float momentum_;
  std::vector<float> accumulated_;
};

// A term added to a batch's loss, beside BCE, focal or GHM-C: given the batch's training-instance ids
// (CtrBatch::ids: the index in CtrInstances::train, or the row of a prepared folder's CTR shards),
// its logits, and the base loss with d loss / d logit in dlogits, it returns the new loss and rewrites
// dlogits. The pre-ranking student's distillation from its teacher is one (pre_ranking/distillation.hpp).
using LossTerm = std::function<float(std::span<const uint32_t> instances, std::span<const float> logits, float loss,
                                     std::span<float> dlogits)>;

}  // namespace funnel::train
