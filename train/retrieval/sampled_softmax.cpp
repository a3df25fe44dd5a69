#include "train/retrieval/sampled_softmax.hpp"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace funnel::train {

namespace {

// [begin, end) of part `index` of `count` equal parts of n.
std::pair<Eigen::Index, Eigen::Index> part(Eigen::Index n, int index, int count) {
  return {n * index / count, n * (index + 1) / count};
}

}  // namespace

double sampled_softmax(const float* u, const float* v, std::span<const uint32_t> items, std::span<const float> log_q,
                       size_t dim, const SampledSoftmaxOptions& options, float* du, float* dv, const NegativeBank& bank,
                       const SoftmaxRows& rows_of) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto n = static_cast<Eigen::Index>(items.size());  // columns: the (global) batch's items
  const auto nr = static_cast<Eigen::Index>(rows_of.count == SIZE_MAX ? items.size() : rows_of.count);  // rows scored here
  const auto first = static_cast<Eigen::Index>(rows_of.first);  // row r's positive is column first + r
  const auto m = static_cast<Eigen::Index>(bank.count);
  const auto d = static_cast<Eigen::Index>(dim);
  Eigen::Map<const Matrix> U(u, nr, d), V(v, n, d), Bank(bank.embeddings, m, d);
  const float inv_tau = 1.0f / options.temperature;

  // Columns: the batch's items, then the bank's entries, each shifted by its log q.
  Eigen::RowVectorXf shift = Eigen::RowVectorXf::Zero(n + m);
  if (options.logq_correction) {
    for (Eigen::Index c = 0; c < n; ++c) shift(c) = log_q[static_cast<size_t>(c)];
    if (bank.apply_logq)
      for (Eigen::Index c = 0; c < m; ++c) shift(n + c) = bank.log_q[c];
  }
  // Accidental hits: columns sorted by item, so each row finds the columns holding its positive.
  std::vector<std::pair<uint32_t, uint32_t>> by_item;
  if (options.mask_accidental_hits) {
    by_item.reserve(static_cast<size_t>(n + m));
    for (Eigen::Index c = 0; c < n + m; ++c)
      by_item.emplace_back(c < n ? items[static_cast<size_t>(c)] : bank.items[c - n], static_cast<uint32_t>(c));
    std::sort(by_item.begin(), by_item.end());
  }

  Matrix logits(nr, n + m);
  const bool balanced = bank.balanced_item_gradient && m > 0 && dv;
  Matrix item_grad(balanced ? nr : 0, balanced ? n : 0);  // the in-batch softmax's gradient, for dV
  std::vector<double> row_loss(static_cast<size_t>(nr));
  const bool gradients = du || dv;
  const size_t total = rows_of.total ? rows_of.total : static_cast<size_t>(nr);
  const float grad_scale = inv_tau / static_cast<float>(total);
  // Each thread owns a block of rows (logits, softmax, dU) and then a block of columns (dV). The split
  // is by rows, so every value is computed by the same arithmetic whatever the thread count.
#pragma omp parallel
  {
    const auto [r0, r1] = part(nr, omp_get_thread_num(), omp_get_num_threads());
    const Eigen::Index rows = r1 - r0;
    if (rows > 0) {
      auto block = logits.middleRows(r0, rows);
      block.leftCols(n).noalias() = U.middleRows(r0, rows) * V.transpose();
      if (m > 0) block.rightCols(m).noalias() = U.middleRows(r0, rows) * Bank.transpose();
      block = (block * inv_tau).rowwise() - shift;
      for (Eigen::Index r = r0; r < r1; ++r) {
        auto row = logits.row(r).array();
        const Eigen::Index target_column = first + r;
        const uint32_t positive = items[static_cast<size_t>(target_column)];
        if (options.mask_accidental_hits) {
          auto it = std::lower_bound(by_item.begin(), by_item.end(), std::make_pair(positive, uint32_t{0}));
          for (; it != by_item.end() && it->first == positive; ++it)
            if (it->second != static_cast<uint32_t>(target_column)) row(it->second) = -std::numeric_limits<float>::infinity();
        }
        // Log-softmax; the gradient of the mean CE is (softmax - onehot) / n.
        const float top = row.maxCoeff();
        const float target = row(target_column);
        row = (row - top).exp();
        const double sum = row.template cast<double>().sum();
        row_loss[static_cast<size_t>(r)] = std::log(sum) + static_cast<double>(top) - static_cast<double>(target);
        if (gradients) {
          row *= grad_scale / static_cast<float>(sum);  // now d loss / d (u . v)
          if (balanced) {
            const float in_batch = row.head(n).sum();
            item_grad.row(r) = row.head(n).matrix() * (grad_scale / in_batch);  // rows of p / P(batch), scaled
            item_grad(r, target_column) -= grad_scale;
          }
          row(target_column) -= grad_scale;
        }
      }
      if (du) {
        Eigen::Map<Matrix> dU(du, nr, d);
        dU.middleRows(r0, rows).noalias() = block.leftCols(n) * V;
        if (m > 0) dU.middleRows(r0, rows).noalias() += block.rightCols(m) * Bank;  // the bank itself gets no gradient
      }
    }
    if (dv) {
#pragma omp barrier
      const auto [c0, c1] = part(n, omp_get_thread_num(), omp_get_num_threads());
      if (c1 > c0) {
        auto columns = balanced ? item_grad.middleCols(c0, c1 - c0) : logits.middleCols(c0, c1 - c0);
        Eigen::Map<Matrix>(dv, n, d).middleRows(c0, c1 - c0).noalias() = columns.transpose() * U;
      }
    }
  }
  double loss = 0.0;
  for (double l : row_loss) loss += l;
  return loss / static_cast<double>(total);
}

}  // namespace funnel::train
