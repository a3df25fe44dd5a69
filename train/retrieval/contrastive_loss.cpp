#include "train/retrieval/contrastive_loss.hpp"

#include <Eigen/Core>
#include <cmath>

namespace funnel::train {

namespace {
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMatrixMap = Eigen::Map<const Matrix>;
using MatrixMap = Eigen::Map<Matrix>;
}  // namespace

// Float products, as the towers run in float; the sums that collect many terms (a row's exps, the batch's
// loss, the squared similarities) run in double. The row maximum is subtracted before exp, so that no
// temperature overflows it (tau = 0.05 already puts the logits at 20, tau = 1e-3 at 1000).
// Preconditions: temperature > 0; dz and dz2 do not alias z or z2 (both gradients read both inputs).
double contrastive_loss(const float* z, const float* z2, size_t n, size_t dim, float temperature, float* dz,
                        float* dz2) {
  if (n == 0) return 0.0;
  const auto rows = static_cast<Eigen::Index>(n), cols = static_cast<Eigen::Index>(dim);
  ConstMatrixMap Z(z, rows, cols), Z2(z2, rows, cols);
  const float inv_tau = 1.0f / temperature;
  const float grad_scale = inv_tau / static_cast<float>(n);

  // logits(i, j) = s(z_i, z'_j) / tau; each row is a softmax over the second views, target the diagonal.
  Matrix logits(rows, rows);
  logits.noalias() = Z * Z2.transpose();
  logits *= inv_tau;
  double loss = 0.0;
  for (Eigen::Index i = 0; i < rows; ++i) {
    auto row = logits.row(i).array();
    const float top = row.maxCoeff();
    const float target = row(i);
    row = (row - top).exp();
    const double sum = row.cast<double>().sum();
    loss += std::log(sum) + static_cast<double>(top) - static_cast<double>(target);
    // dL/dlogits = (softmax - onehot) / n, and dL/ds = that / tau.
    row *= static_cast<float>(static_cast<double>(grad_scale) / sum);
    row(i) -= grad_scale;
  }
  // logits now holds G = dL/ds(z_i, z'_j): dL/dz = G Z2, dL/dz2 = G^T Z.
  if (dz) MatrixMap(dz, rows, cols).noalias() = logits * Z2;
  if (dz2) MatrixMap(dz2, rows, cols).noalias() = logits.transpose() * Z;
  return loss / static_cast<double>(n);
}

// With S = Z Z^T, dL/ds_ij = 2 s_ij / (n(n-1)) off the diagonal (the diagonal, ||z_i||^2 = 1, is not in
// the loss); S is symmetric, so dL/dZ = (G + G^T) Z = 4/(n(n-1)) S_off Z, S_off being S with a zero diagonal.
double spread_out_square_loss(const float* z, size_t n, size_t dim, float* dz) {
  const auto rows = static_cast<Eigen::Index>(n), cols = static_cast<Eigen::Index>(dim);
  if (n < 2) {
    if (dz) MatrixMap(dz, rows, cols).setZero();
    return 0.0;
  }
  ConstMatrixMap Z(z, rows, cols);
  Matrix S(rows, rows);
  S.noalias() = Z * Z.transpose();
  S.diagonal().setZero();
  const double pairs = static_cast<double>(n) * static_cast<double>(n - 1);
  const double loss = S.cast<double>().squaredNorm() / pairs;
  if (dz) {
    S *= static_cast<float>(4.0 / pairs);
    MatrixMap(dz, rows, cols).noalias() = S * Z;
  }
  return loss;
}

}  // namespace funnel::train
