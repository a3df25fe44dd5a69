// Adam (Kingma & Ba): dense moments, as the PyTorch reference uses, or lazy on embedding tables.
#pragma once

#include <vector>

#include "parameter.hpp"

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
};

class Adam {
 public:
  Adam(std::vector<Parameter*> parameters, AdamOptions options);
  // One update from the accumulated gradients, which it then zeroes.
  void step();
  long steps() const { return step_; }
  void set_learning_rate(float rate) { options_.learning_rate = rate; }

  // For checkpoints: the moments of every parameter, in order, and the step count.
  struct State {
    std::vector<std::vector<float>> m, v;
    long step = 0;
  };
  State state() const { return {m_, v_, step_}; }
  void restore(State state);

 private:
  std::vector<Parameter*> parameters_;
  std::vector<std::vector<float>> m_, v_;
  AdamOptions options_;
  long step_ = 0;
};

}  // namespace funnel::train
