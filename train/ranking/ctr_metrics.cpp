#include "train/ranking/ctr_metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "train/core/logistic.hpp"

namespace funnel::train {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Instance {
  uint32_t user;
  float score;
  bool positive;
};

// Labels are 0 or 1; the threshold only keeps a label that is not exactly 1.0f from being a negative.
bool is_positive(float label) { return label > 0.5f; }

// std::sort needs a strict weak order, which a NaN score breaks; a model that produced one has no ranking.
bool any_nan(std::span<const float> scores) {
  return std::any_of(scores.begin(), scores.end(), [](float s) { return std::isnan(s); });
}

// Mann-Whitney AUC of instances sorted by score: (sum of the positives' ranks - P (P + 1) / 2) / (P N), where tied
// scores share the average of the ranks they span, which counts a tied positive-negative pair one half.
double sorted_auc(std::span<const Instance> sorted) {
  double positives = 0.0, positive_rank_sum = 0.0;
  for (size_t begin = 0; begin < sorted.size();) {
    size_t end = begin;
    double tied_positives = 0.0;
    for (; end < sorted.size() && sorted[end].score == sorted[begin].score; ++end)
      tied_positives += sorted[end].positive ? 1.0 : 0.0;
    // 1-based ranks begin + 1 .. end.
    positive_rank_sum += tied_positives * (static_cast<double>(begin + 1 + end) / 2.0);
    positives += tied_positives;
    begin = end;
  }
  const double negatives = static_cast<double>(sorted.size()) - positives;
  if (positives == 0.0 || negatives == 0.0) return kNaN;
  return (positive_rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives);
}

}  // namespace

double auc(std::span<const float> scores, std::span<const float> labels) {
  if (scores.size() != labels.size()) throw std::invalid_argument("auc: scores and labels differ in size");
  if (any_nan(scores)) return kNaN;
  std::vector<Instance> instances(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) instances[i] = {0, scores[i], is_positive(labels[i])};
  std::sort(instances.begin(), instances.end(), [](const Instance& a, const Instance& b) { return a.score < b.score; });
  return sorted_auc(instances);
}

double gauc(std::span<const uint32_t> users, std::span<const float> scores, std::span<const float> labels) {
  if (users.size() != scores.size() || labels.size() != scores.size())
    throw std::invalid_argument("gauc: users, scores and labels differ in size");
  if (any_nan(scores)) return kNaN;
  std::vector<Instance> instances(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) instances[i] = {users[i], scores[i], is_positive(labels[i])};
  // One sort by (user, score) leaves every user's instances contiguous and already ranked.
  std::sort(instances.begin(), instances.end(), [](const Instance& a, const Instance& b) {
    return a.user != b.user ? a.user < b.user : a.score < b.score;
  });
  const std::span<const Instance> all(instances);
  double weighted = 0.0, weight = 0.0;
  for (size_t begin = 0; begin < all.size();) {
    size_t end = begin;
    while (end < all.size() && all[end].user == all[begin].user) ++end;
    // NaN for a user with one class only: such users are left out, not counted as 0.
    const double user_auc = sorted_auc(all.subspan(begin, end - begin));
    if (!std::isnan(user_auc)) {
      weighted += static_cast<double>(end - begin) * user_auc;
      weight += static_cast<double>(end - begin);
    }
    begin = end;
  }
  return weight > 0.0 ? weighted / weight : kNaN;
}

double log_loss(std::span<const float> logits, std::span<const float> labels) {
  if (logits.size() != labels.size()) throw std::invalid_argument("log_loss: logits and labels differ in size");
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double x = logits[i], y = labels[i];
    // -y log p - (1 - y) log(1 - p) from the logit, so a confident wrong prediction costs |x| instead of log(0).
    sum += cross_entropy(x, y);
  }
  return sum / static_cast<double>(logits.size());
}

CtrMetrics ctr_metrics(std::span<const uint32_t> users, std::span<const float> logits, std::span<const float> labels) {
  // AUC and GAUC rank the logits themselves: sigmoid is strictly increasing, so the ranking is that of the
  // probabilities, and float probabilities would even tie logits that differ (sigmoid rounds to 1 above x ≈ 17).
  return {auc(logits, labels), gauc(users, logits, labels), log_loss(logits, labels), logits.size()};
}

nlohmann::json ctr_metrics_json(const CtrMetrics& m) {
  return {{"auc", m.auc}, {"gauc", m.gauc}, {"logloss", m.logloss}, {"instances", m.instances}};
}

CtrMetrics ctr_metrics_from_json(const nlohmann::json& m) {
  CtrMetrics out;
  out.auc = m.at("auc");
  out.gauc = m.at("gauc");
  out.logloss = m.at("logloss");
  out.instances = m.at("instances");
  return out;
}

}  // namespace funnel::train
