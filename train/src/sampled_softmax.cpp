#include "sampled_softmax.hpp"

#include <Eigen/Core>
#include <cmath>
#include <limits>

namespace funnel::train {

double sampled_softmax(const float* u, const float* v, std::span<const uint32_t> items, std::span<const float> log_q,
                       size_t dim, const SampledSoftmaxOptions& options, float* du, float* dv, const NegativeBank& bank) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto n = static_cast<Eigen::Index>(items.size());
  const auto m = static_cast<Eigen::Index>(bank.count);
  const auto d = static_cast<Eigen::Index>(dim);
  Eigen::Map<const Matrix> U(u, n, d), V(v, n, d), Bank(bank.embeddings, m, d);
  const float inv_tau = 1.0f / options.temperature;
  constexpr float kMasked = -std::numeric_limits<float>::infinity();

  // Columns: the batch's items, then the bank's entries.
  Matrix logits(n, n + m);
  logits.leftCols(n).noalias() = U * V.transpose();
  if (m > 0) logits.rightCols(m).noalias() = U * Bank.transpose();
  std::vector<float> column_shift(static_cast<size_t>(n + m), 0.0f);
  if (options.logq_correction) {
    for (Eigen::Index c = 0; c < n; ++c) column_shift[static_cast<size_t>(c)] = log_q[static_cast<size_t>(c)];
    if (bank.apply_logq)
      for (Eigen::Index c = 0; c < m; ++c) column_shift[static_cast<size_t>(n + c)] = bank.log_q[c];
  }

  std::vector<double> row_loss(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (Eigen::Index r = 0; r < n; ++r) {
    auto row = logits.row(r).array();
    const uint32_t positive = items[static_cast<size_t>(r)];
    for (Eigen::Index c = 0; c < n + m; ++c) {
      const bool hit = options.mask_accidental_hits && c != r && (c < n ? items[static_cast<size_t>(c)] : bank.items[c - n]) == positive;
      row(c) = hit ? kMasked : row(c) * inv_tau - column_shift[static_cast<size_t>(c)];
    }
    // Log-softmax; the gradient of the mean CE is (softmax - onehot) / n.
    const float top = row.maxCoeff();
    const float target = row(r);
    row = (row - top).exp();
    const double sum = row.template cast<double>().sum();
    row_loss[static_cast<size_t>(r)] = std::log(sum) + static_cast<double>(top) - static_cast<double>(target);
    row /= static_cast<float>(sum);
    row(r) -= 1.0f;
  }
  double loss = 0.0;
  for (double l : row_loss) loss += l;
  loss /= static_cast<double>(n);

  if (du || dv) {
    logits *= inv_tau / static_cast<float>(n);  // now d loss / d (u . v)
    if (du) {
      Eigen::Map<Matrix> dU(du, n, d);
      dU.noalias() = logits.leftCols(n) * V;
      if (m > 0) dU.noalias() += logits.rightCols(m) * Bank;  // the bank itself gets no gradient
    }
    if (dv) Eigen::Map<Matrix>(dv, n, d).noalias() = logits.leftCols(n).transpose() * U;
  }
  return loss;
}

}  // namespace funnel::train
