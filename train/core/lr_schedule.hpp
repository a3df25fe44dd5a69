// Learning rate per step: an optional linear warm-up, then constant, cosine or linear decay to
// lr_min_ratio x the base rate at the last step.
#pragma once

#include "train/retrieval/two_tower_config.hpp"

namespace funnel::train {

float learning_rate_at(const TrainConfig& config, long step, long total_steps);

}  // namespace funnel::train
