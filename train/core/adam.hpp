// Adam (Kingma & Ba): dense moments, as the PyTorch reference uses, or lazy on embedding tables.
#pragma once

#include <cstdint>
#include <vector>

#include "train/core/parameter.hpp"
#include "train/core/training_state.hpp"

namespace funnel::train {

struct AdamOptions {
  float learning_rate = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
  // Lazy Adam (as TensorFlow's LazyAdam and PyTorch's SparseAdam): embedding rows that no example of
  // the step touched keep their moments and values. The cost of a step then follows the batch, not the
  // table sizes; the bias correction still uses the global step.
  bool lazy = false;
  // Dense Adam, computed late: an embedding row that a step does not touch still gets that step's
  // zero-gradient update, but only when the row is next read (catch_up) or at sync_all(). The arithmetic
  // is the dense update's, step by step, so the values are bit-identical to dense Adam's, while a step
  // no longer streams every table through memory. The caller must catch up every row before reading it.
  bool deferred = false;
};

class Adam {
 public:
  Adam(std::vector<Parameter*> parameters, AdamOptions options);
  // One update from the accumulated gradients, which it then zeroes.
  void step();
  long steps() const { return step_; }
  void set_learning_rate(float rate) { options_.learning_rate = rate; }

  // Deferred mode: brings a row of a sparse parameter up to date with every step so far (no-op
  // otherwise, or when the row is current). catch_up_rows does a list of (parameter index, row) on every
  // core; parameter indices are positions in the constructor's list.
  void catch_up(size_t parameter, uint32_t row);
  void catch_up_rows(const std::vector<std::pair<uint32_t, uint32_t>>& rows);
  // Brings every row up to date: before the parameters are read as a whole (evaluation, export).
  void sync_all();

  // For checkpoints: the moments of every parameter, in order, and the step count. Deferred rows are
  // brought up to date first.
  struct State {
    std::vector<std::vector<float>> m, v;
    long step = 0;
  };
  State state();
  void restore(State state);
  // Registers the moments ("adam_m/<parameter>", "adam_v/<parameter>") and the step count with a run's state.
  void register_state(TrainingState& state);

 private:
  void catch_up_through(size_t parameter, uint32_t row, long through);

  std::vector<Parameter*> parameters_;
  std::vector<std::vector<float>> m_, v_;
  AdamOptions options_;
  long step_ = 0;
  // Deferred mode: per sparse parameter, the step each row is current through; per step, its constants.
  std::vector<std::vector<long>> synced_;
  std::vector<float> step_sizes_, inv_sqrt_c2s_;
};

}  // namespace funnel::train
