// Learning rate per step: an optional linear warm-up, then constant, cosine or linear decay to
// min_ratio x the base rate at the last step.
#pragma once

#include <string>

namespace funnel::train {

struct LrSchedule {
  float learning_rate = 1e-3f;
  std::string shape = "constant";  // "constant", "cosine" or "linear"
  long warmup_steps = 0;           // linear warm-up from 0
  float min_ratio = 0.0f;
};

float learning_rate_at(const LrSchedule& schedule, long step, long total_steps);

}  // namespace funnel::train
