#include "sampled_softmax.hpp"

#include <Eigen/Core>
#include <cmath>
#include <limits>

namespace funnel::train {

double sampled_softmax(const float* u, const float* v, std::span<const uint32_t> items, std::span<const float> log_q,
                       size_t dim, const SampledSoftmaxOptions& options, float* du, float* dv) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto n = static_cast<Eigen::Index>(items.size());
  const auto d = static_cast<Eigen::Index>(dim);
  Eigen::Map<const Matrix> U(u, n, d), V(v, n, d);
  const float inv_tau = 1.0f / options.temperature;

  Matrix logits = (U * V.transpose()) * inv_tau;
  if (options.logq_correction)
    for (Eigen::Index c = 0; c < n; ++c) logits.col(c).array() -= log_q[static_cast<size_t>(c)];
  if (options.mask_accidental_hits)
    for (Eigen::Index r = 0; r < n; ++r)
      for (Eigen::Index c = 0; c < n; ++c)
        if (c != r && items[static_cast<size_t>(c)] == items[static_cast<size_t>(r)])
          logits(r, c) = -std::numeric_limits<float>::infinity();

  // Row-wise log-softmax; the gradient of the mean CE is (softmax - onehot) / n.
  double loss = 0.0;
  for (Eigen::Index r = 0; r < n; ++r) {
    const float top = logits.row(r).maxCoeff();
    double sum = 0.0;
    for (Eigen::Index c = 0; c < n; ++c) sum += std::exp(static_cast<double>(logits(r, c) - top));
    const double log_sum = std::log(sum) + top;
    loss += log_sum - logits(r, r);
    for (Eigen::Index c = 0; c < n; ++c)
      logits(r, c) = static_cast<float>(std::exp(static_cast<double>(logits(r, c)) - log_sum));
    logits(r, r) -= 1.0f;
  }
  loss /= static_cast<double>(n);
  if (du || dv) {
    logits *= inv_tau / static_cast<float>(n);  // now d loss / d (u.v)
    if (du) Eigen::Map<Matrix>(du, n, d).noalias() = logits * V;
    if (dv) Eigen::Map<Matrix>(dv, n, d).noalias() = logits.transpose() * U;
  }
  return loss;
}

}  // namespace funnel::train
