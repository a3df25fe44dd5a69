// Adam (Kingma & Ba) with dense moments, as the PyTorch reference uses.
#pragma once

#include <vector>

#include "parameter.hpp"

namespace funnel::train {

struct AdamOptions {
  float learning_rate = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
};

class Adam {
 public:
  Adam(std::vector<Parameter*> parameters, AdamOptions options);
  // One update from the accumulated gradients, which it then zeroes.
  void step();
  long steps() const { return step_; }

 private:
  std::vector<Parameter*> parameters_;
  std::vector<std::vector<float>> m_, v_;
  AdamOptions options_;
  long step_ = 0;
};

}  // namespace funnel::train
