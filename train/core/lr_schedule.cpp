#include "train/core/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

namespace funnel::train {

float learning_rate_at(const LrSchedule& schedule, long step, long total_steps) {
  const double base = schedule.learning_rate;
  const long warmup = schedule.warmup_steps;
  if (step < warmup) return static_cast<float>(base * static_cast<double>(step + 1) / static_cast<double>(warmup));
  if (schedule.shape == "constant") return static_cast<float>(base);
  const double span = static_cast<double>(std::max(total_steps - warmup - 1, 1L));
  const double progress = std::clamp(static_cast<double>(step - warmup) / span, 0.0, 1.0);
  const double floor = schedule.min_ratio;
  const double shape = schedule.shape == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
  return static_cast<float>(base * (floor + (1.0 - floor) * shape));
}

}  // namespace funnel::train
