// Cross-Batch Negative Sampling (Wang et al., SIGIR 2021): a FIFO memory bank of item embeddings
// from recent mini-batches, reused as extra negatives (eq. 9). The bank stores each entry's log q as
// it was when the entry was enqueued, and no gradient flows into it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "train/core/training_state.hpp"
#include "train/retrieval/sampled_softmax.hpp"

namespace funnel::train {

class MemoryBank {
 public:
  MemoryBank(size_t capacity, size_t dim);

  // Enqueues a batch (count rows of dim floats), dequeuing the oldest entries once the bank is full.
  // A batch larger than the bank keeps its last `capacity` rows.
  void enqueue(const float* embeddings, const float* log_q, const uint32_t* items, size_t count);

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  size_t dim() const { return dim_; }
  // The stored entries as softmax columns (storage order; the softmax does not depend on column order).
  // No default for the item gradient's form: the config's (cbns_balanced_item_gradient) is the one that counts.
  NegativeBank negatives(bool apply_logq, bool balanced_item_gradient) const;
  // Item of the entry of the given age: 0 is the oldest.
  uint32_t item_by_age(size_t age) const;

  // For checkpoints.
  struct State {
    std::vector<float> embeddings, log_q;
    std::vector<uint32_t> items;
    size_t head = 0, size = 0;
  };
  State state() const { return {embeddings_, log_q_, items_, head_, size_}; }
  void restore(const State& state);
  // Registers the entries ("bank/...") with a run's state.
  void register_state(TrainingState& state);

 private:
  size_t capacity_, dim_;
  std::vector<float> embeddings_;  // [capacity, dim]
  std::vector<float> log_q_;
  std::vector<uint32_t> items_;
  size_t head_ = 0;  // the next slot to write: the oldest entry once full
  size_t size_ = 0;
};

}  // namespace funnel::train
