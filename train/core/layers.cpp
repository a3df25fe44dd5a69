#include "train/core/layers.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "funnel/tower.hpp"

namespace funnel::train {

namespace {
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<Matrix>;
using ConstMatrixMap = Eigen::Map<const Matrix>;
using VectorMap = Eigen::Map<Eigen::VectorXf>;
using ConstRowVectorMap = Eigen::Map<const Eigen::RowVectorXf>;
}  // namespace

void EmbeddingBag::forward(const IdLists& lists, float* out, size_t stride, size_t column) const {
  const size_t d = dim();
  for (size_t b = 0; b < lists.size(); ++b) {
    float* y = out + b * stride + column;
    std::fill(y, y + d, 0.0f);
    const auto ids = lists[b];
    for (uint32_t id : ids) {
      const float* row = table_->value.data() + row_of(id) * d;
      for (size_t k = 0; k < d; ++k) y[k] += row[k];
    }
    if (mean_ && ids.size() > 1) {
      const float inv = 1.0f / static_cast<float>(ids.size());
      for (size_t k = 0; k < d; ++k) y[k] *= inv;
    }
  }
}

void EmbeddingBag::backward(const IdLists& lists, const float* dout, size_t stride, size_t column) {
  const size_t d = dim();
  for (size_t b = 0; b < lists.size(); ++b) {
    const float* dy = dout + b * stride + column;
    const auto ids = lists[b];
    const float scale = mean_ && ids.size() > 1 ? 1.0f / static_cast<float>(ids.size()) : 1.0f;
    for (uint32_t id : ids) {
      const size_t row = row_of(id);
      float* g = table_->grad.data() + row * d;
      for (size_t k = 0; k < d; ++k) g[k] += scale * dy[k];
      if (table_->sparse) table_->touch(static_cast<uint32_t>(row));
    }
  }
}

void Linear::init(Rng& rng) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(in()));
  for (float& w : weight_->value) w = static_cast<float>(rng.uniform(-bound, bound));
  for (float& b : bias_->value) b = static_cast<float>(rng.uniform(-bound, bound));
}

void Linear::forward(const float* x, size_t batch, float* y) const {
  const auto n = static_cast<Eigen::Index>(batch), i = static_cast<Eigen::Index>(in()), o = static_cast<Eigen::Index>(out());
  ConstMatrixMap X(x, n, i);
  ConstMatrixMap W(weight_->value.data(), o, i);
  MatrixMap Y(y, n, o);
  Y.noalias() = X * W.transpose();
  Y.rowwise() += ConstRowVectorMap(bias_->value.data(), o);
}

void Linear::backward(const float* x, const float* dy, size_t batch, float* dx) {
  const auto n = static_cast<Eigen::Index>(batch), i = static_cast<Eigen::Index>(in()), o = static_cast<Eigen::Index>(out());
  ConstMatrixMap X(x, n, i);
  ConstMatrixMap dY(dy, n, o);
  MatrixMap dW(weight_->grad.data(), o, i);
  dW.noalias() += dY.transpose() * X;
  // A plain loop: Eigen's vectorised column sums split the rows by the buffer's address alignment,
  // which would make the rounding, and so the trained model, depend on the heap.
  float* db = bias_->grad.data();
  for (size_t b = 0; b < batch; ++b)
    for (size_t k = 0; k < out(); ++k) db[k] += dy[b * out() + k];
  if (dx) {
    ConstMatrixMap W(weight_->value.data(), o, i);
    MatrixMap(dx, n, i).noalias() = dY * W;
  }
}

void prelu_forward(const float* x, size_t batch, size_t units, const float* alpha, float* y) {
  for (size_t b = 0; b < batch; ++b)
    for (size_t k = 0; k < units; ++k) {
      const float v = x[b * units + k];
      y[b * units + k] = v > 0.0f ? v : alpha[k] * v;
    }
}

void prelu_backward(const float* x, const float* dy, size_t batch, size_t units, const float* alpha, float* dx, float* dalpha) {
  // Branch-free, so that it vectorises along the units.
  for (size_t b = 0; b < batch; ++b)
    for (size_t k = 0; k < units; ++k) {
      const float v = x[b * units + k], g = dy[b * units + k];
      const bool positive = v > 0.0f;
      dx[b * units + k] = positive ? g : alpha[k] * g;
      dalpha[k] += positive ? 0.0f : g * v;
    }
}

void glorot_uniform(Parameter& parameter, Rng& rng) {
  const double rows = static_cast<double>(parameter.shape.at(0));
  const double cols = parameter.shape.size() > 1 ? static_cast<double>(parameter.shape[1]) : 1.0;
  const double bound = std::sqrt(6.0 / (rows + cols));
  for (float& w : parameter.value) w = static_cast<float>(rng.uniform(-bound, bound));
}

void relu_forward(const float* x, size_t n, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(const float* y, const float* dy, size_t n, float* dx) {
  for (size_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

void l2_normalize_forward(const float* x, size_t batch, size_t dim, float* y) {
  for (size_t b = 0; b < batch; ++b) {
    const float* xr = x + b * dim;
    float squares = 0.0f;
    for (size_t k = 0; k < dim; ++k) squares += xr[k] * xr[k];
    const float inv = 1.0f / std::max(std::sqrt(squares), funnel::kL2Epsilon);
    for (size_t k = 0; k < dim; ++k) y[b * dim + k] = xr[k] * inv;
  }
}

void l2_normalize_backward(const float* x, const float* y, const float* dy, size_t batch, size_t dim, float* dx) {
  // d(x/n)/dx = (I - y y^T) / n for n = ||x|| above epsilon.
  for (size_t b = 0; b < batch; ++b) {
    const float* xr = x + b * dim;
    const float* yr = y + b * dim;
    const float* g = dy + b * dim;
    float squares = 0.0f, projection = 0.0f;
    for (size_t k = 0; k < dim; ++k) {
      squares += xr[k] * xr[k];
      projection += yr[k] * g[k];
    }
    const float norm = std::sqrt(squares);
    if (norm <= funnel::kL2Epsilon) {
      for (size_t k = 0; k < dim; ++k) dx[b * dim + k] = g[k] / funnel::kL2Epsilon;
      continue;
    }
    for (size_t k = 0; k < dim; ++k) dx[b * dim + k] = (g[k] - yr[k] * projection) / norm;
  }
}

}  // namespace funnel::train
