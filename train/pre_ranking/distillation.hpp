// Distillation of a ranking teacher into a pre-ranking student (AutoFAS, Li et al., KDD 2021, eq. 6):
// L = (1 - lambda1) L_pre + lambda1 ||r(x) - p(x)||^2, with r the teacher's click probability (a constant:
// no gradient reaches the teacher) and p = sigmoid(the student's logit).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "train/ranking/ctr_losses.hpp"

namespace funnel::train {

// Mixes a batch loss already computed (`loss`, with d loss / d logit in dlogits) with the mean squared
// gap to the teacher: returns the mixed loss and rewrites dlogits. The square is averaged over the batch,
// as the base loss is.
float distill(std::span<const float> logits, std::span<const float> teacher, float weight, float loss, std::span<float> dlogits);

// The ranking loop's extra loss term that distils `teacher` (one click probability per training instance;
// kept by reference) with the given weight; no term (an empty function) when the weight is 0. Throws
// TrainingError when the teacher has not one output per training instance.
LossTerm distillation_term(const std::vector<float>& teacher, size_t training_instances, float weight);

}  // namespace funnel::train
