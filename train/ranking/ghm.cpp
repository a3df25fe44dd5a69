// GHM-C, the gradient harmonizing classification loss (Li, Liu, Wang, "Gradient Harmonized Single-stage
// Detector", AAAI 2019), computed as the official code does: libuyu/GHM_Detection, loss/ghm_loss.py.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "train/ranking/ctr_losses.hpp"
#include "train/core/logistic.hpp"

namespace funnel::train {

GhmC::GhmC(uint32_t bins, float momentum) : momentum_(momentum), accumulated_(bins, 0.0f) {
  if (bins == 0) throw std::invalid_argument("GHM-C needs at least one bin");
  // Momentum 1 would never move the densities off their initial 0.
  if (!(momentum >= 0.0f && momentum < 1.0f)) throw std::invalid_argument("GHM-C momentum must lie in [0, 1)");
}

void GhmC::restore(std::vector<float> accumulated) {
  if (accumulated.size() != accumulated_.size())
    throw std::invalid_argument("GHM-C state has " + std::to_string(accumulated.size()) + " bins, the loss " +
                                std::to_string(accumulated_.size()));
  accumulated_ = std::move(accumulated);
}

float GhmC::loss(std::span<const float> logits, std::span<const float> labels, std::span<float> dlogits, const BatchSum& global) {
  if (labels.size() != logits.size() || dlogits.size() != logits.size())
    throw std::invalid_argument("GHM-C: logits, labels and dlogits differ in size");
  // The official code divides by tot = max(batch size, 1): an empty batch has loss 0 and leaves every bin alone.
  // A rank's empty part of a global batch still takes part in the sum below.
  if (logits.empty() && !global) return 0.0f;
  const size_t n = logits.size();
  const uint32_t bins = this->bins();

  // Eq. 4-6 through ε-bins (the paper's unit-region approximation, ε = 1/bins): bin i holds e_i <= g < e_{i+1}
  // with e_i = i / bins. The official code compares float32 g with float32 edges, and so does this. g never
  // exceeds 1, so the last bin is closed at 1, which is what the official last edge 1 + 1e-6 achieves.
  std::vector<float> inner_edges(bins - 1);
  for (uint32_t i = 1; i < bins; ++i) inner_edges[i - 1] = static_cast<float>(static_cast<double>(i) / bins);
  std::vector<uint32_t> bin_of(n), counts(bins, 0);
  std::vector<double> p(n);
  for (size_t k = 0; k < n; ++k) {
    p[k] = sigmoid(logits[k]);
    // Eq. 3: the gradient norm g = |p - p*|. It only selects the weight, which is a constant of the loss, as
    // the official code's detach() makes it.
    const auto g = static_cast<float>(std::fabs(p[k] - labels[k]));
    const auto above = std::upper_bound(inner_edges.begin(), inner_edges.end(), g);
    bin_of[k] = static_cast<uint32_t>(above - inner_edges.begin());
    ++counts[bin_of[k]];
  }

  // Data-parallel: the global batch's histogram and size (counts below 2^53 are exact in double).
  double tot = static_cast<double>(n);
  if (global) {
    std::vector<double> sums(counts.begin(), counts.end());
    sums.push_back(tot);
    global(sums);
    for (uint32_t b = 0; b < bins; ++b) counts[b] = static_cast<uint32_t>(sums[b]);
    tot = sums[bins];
    if (tot == 0) return 0.0f;
  }

  // The gradient density GD of each bin: the EMA of its count with the official code's momentum.
  uint32_t nonempty = 0;
  for (uint32_t b = 0; b < bins; ++b) {
    // An empty bin keeps its EMA: the official calc updates acc_sum[i] only under `if num_in_bin > 0`. The paper's
    // S_j <- α S_j + (1 - α) R_j, read literally, would decay it towards 0 instead, so that a rarely hit bin's
    // density shrinks between hits and over-weights its next instances. We follow the authors' code, as the peer does.
    if (counts[b] == 0) continue;
    // With momentum 0 this is the count itself, the official code's per-batch branch (tot / num_in_bin).
    accumulated_[b] = momentum_ * accumulated_[b] + (1.0f - momentum_) * static_cast<float>(counts[b]);
    ++nonempty;
  }

  // Eq. 7, β_i = N / GD(g_i) with N = the batch size. Where the paper's unit region scales GD by the number of
  // bins M, the official code divides β by the number of non-empty bins instead; that is followed here.
  std::vector<double> beta(bins, 0.0);
  for (uint32_t b = 0; b < bins; ++b)
    if (counts[b] > 0) beta[b] = tot / accumulated_[b] / nonempty;

  // Eq. 8: L = Σ β_i CE_i / N; with β constant, d L / d x_i = β_i (p_i - y_i) / N.
  double sum = 0.0;
  for (size_t k = 0; k < n; ++k) {
    const double weight = beta[bin_of[k]];
    sum += weight * cross_entropy(logits[k], labels[k]);
    dlogits[k] = static_cast<float>(weight * (p[k] - labels[k]) / tot);
  }
  return static_cast<float>(sum / tot);
}

}  // namespace funnel::train
