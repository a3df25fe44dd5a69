// CTR evaluation: AUC, GAUC and LogLoss.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>

namespace funnel::train {

// Mann-Whitney AUC with tied scores counted one half (average ranks). NaN when one class is absent.
double auc(std::span<const float> scores, std::span<const float> labels);

// Per-user AUC weighted by the user's number of instances, over users with both classes only. NaN
// when no user has both.
double gauc(std::span<const uint32_t> users, std::span<const float> scores, std::span<const float> labels);

// Mean binary cross-entropy of sigmoid(logit), in double precision.
double log_loss(std::span<const float> logits, std::span<const float> labels);

struct CtrMetrics {
  double auc = 0;
  double gauc = 0;
  double logloss = 0;
  size_t instances = 0;
};

CtrMetrics ctr_metrics(std::span<const uint32_t> users, std::span<const float> logits, std::span<const float> labels);

// As reports, model files and checkpoints keep them: {"auc", "gauc", "logloss", "instances"}.
nlohmann::json ctr_metrics_json(const CtrMetrics& metrics);
CtrMetrics ctr_metrics_from_json(const nlohmann::json& object);

}  // namespace funnel::train
