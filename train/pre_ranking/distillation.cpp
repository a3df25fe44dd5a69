#include "train/pre_ranking/distillation.hpp"

#include <cmath>

#include "train/core/errors.hpp"

namespace funnel::train {

float distill(std::span<const float> logits, std::span<const float> teacher, float weight, float loss, std::span<float> dlogits) {
  if (teacher.size() != logits.size() || dlogits.size() != logits.size())
    throw TrainingError("distill: " + std::to_string(logits.size()) + " logits, " + std::to_string(teacher.size()) +
                        " teacher outputs, " + std::to_string(dlogits.size()) + " gradients");
  if (logits.empty()) return loss;
  const double n = static_cast<double>(logits.size());
  double gap = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double p = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[i])));
    const double d = p - teacher[i];
    gap += d * d;
    // d/ds (p - r)^2 = 2 (p - r) p (1 - p), averaged over the batch.
    dlogits[i] = static_cast<float>((1.0 - weight) * dlogits[i] + weight * 2.0 * d * p * (1.0 - p) / n);
  }
  return static_cast<float>((1.0 - weight) * loss + weight * gap / n);
}

LossTerm distillation_term(const std::vector<float>& teacher, size_t training_instances, float weight) {
  if (teacher.size() != training_instances)
    throw TrainingError("distillation: " + std::to_string(teacher.size()) + " teacher outputs for " +
                        std::to_string(training_instances) + " training instances");
  if (weight <= 0.0f) return {};
  return [&teacher, weight](std::span<const uint32_t> instances, std::span<const float> logits, float loss, std::span<float> dlogits) {
    std::vector<float> targets(instances.size());
    for (size_t k = 0; k < instances.size(); ++k) targets[k] = teacher[instances[k]];
    return distill(logits, targets, weight, loss, dlogits);
  };
}

}  // namespace funnel::train
