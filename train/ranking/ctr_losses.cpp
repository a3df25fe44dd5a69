#include "train/ranking/ctr_losses.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "train/core/logistic.hpp"

namespace funnel::train {

namespace {

void check_sizes(const char* loss, std::span<const float> logits, std::span<const float> labels,
                 std::span<float> dlogits) {
  if (labels.size() != logits.size() || dlogits.size() != logits.size())
    throw std::invalid_argument(std::string(loss) + ": logits, labels and dlogits differ in size");
}

}  // namespace

float bce_loss(std::span<const float> logits, std::span<const float> labels, std::span<float> dlogits, double denominator) {
  check_sizes("bce_loss", logits, labels, dlogits);
  if (logits.empty()) return 0.0f;
  const double n = denominator > 0 ? denominator : static_cast<double>(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double x = logits[i], y = labels[i];
    sum += cross_entropy(x, y);
    dlogits[i] = static_cast<float>((sigmoid(x) - y) / n);
  }
  return static_cast<float>(sum / n);
}

float focal_loss(std::span<const float> logits, std::span<const float> labels, const FocalOptions& options,
                 std::span<float> dlogits, double denominator) {
  check_sizes("focal_loss", logits, labels, dlogits);
  if (logits.empty()) return 0.0f;
  const double n = denominator > 0 ? denominator : static_cast<double>(logits.size());
  const double gamma = options.gamma, alpha = options.alpha;
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    const double x = logits[i], y = labels[i];
    const double p = sigmoid(x), q = sigmoid(-x);  // q = 1 - p
    // torchvision's sigmoid_focal_loss, written for any label in [0, 1]: p_t = p y + (1 - p)(1 - y), so
    // 1 - p_t = (1 - p) y + p (1 - y), which keeps its precision when p_t is close to 1.
    const double miss = q * y + p * (1.0 - y);
    const double alpha_t = alpha * y + (1.0 - alpha) * (1.0 - y);
    const double ce = cross_entropy(x, y);
    const double modulator = std::pow(miss, gamma);
    sum += alpha_t * modulator * ce;
    // d/dx [(1 - p_t)^gamma ce] = gamma (1 - p_t)^(gamma - 1) (d(1 - p_t)/dx) ce + (1 - p_t)^gamma (p - y), with
    // d(1 - p_t)/dx = (1 - 2y) p (1 - p). When 1 - p_t is exactly 0 (a hard label at a logit so large that the
    // miss underflows) the first term's limit is 0, but pow(0, gamma - 1) would make it 0 * inf for gamma < 1.
    const double focus = miss > 0.0 ? gamma * std::pow(miss, gamma - 1.0) * (1.0 - 2.0 * y) * p * q * ce : 0.0;
    dlogits[i] = static_cast<float>(alpha_t * (focus + modulator * (p - y)) / n);
  }
  return static_cast<float>(sum / n);
}

}  // namespace funnel::train
