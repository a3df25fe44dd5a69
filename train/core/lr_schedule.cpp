#include "train/core/lr_schedule.hpp"

#include <algorithm>
#include <cmath>

namespace funnel::train {

float learning_rate_at(const TrainConfig& config, long step, long total_steps) {
  const double base = config.learning_rate;
  const long warmup = config.lr_warmup_steps;
  if (step < warmup) return static_cast<float>(base * static_cast<double>(step + 1) / static_cast<double>(warmup));
  if (config.lr_schedule == "constant") return static_cast<float>(base);
  const double span = static_cast<double>(std::max(total_steps - warmup - 1, 1L));
  const double progress = std::clamp(static_cast<double>(step - warmup) / span, 0.0, 1.0);
  const double floor = config.lr_min_ratio;
  const double shape = config.lr_schedule == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
  return static_cast<float>(base * (floor + (1.0 - floor) * shape));
}

}  // namespace funnel::train
