// Layers as explicit forward/backward pairs over contiguous row-major buffers (batch rows first).
// Backward accumulates parameter gradients and, where asked, writes the input gradient.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "train/core/id_lists.hpp"
#include "train/core/parameter.hpp"
#include "train/core/rng.hpp"

namespace funnel::train {

// Embedding bag for one feature: mean (or sum) of the rows of the feature's ids, written into
// columns [column, column + dim) of an output of width `stride`.
class EmbeddingBag {
 public:
  EmbeddingBag(Parameter* table, bool mean_pooling) : table_(table), mean_(mean_pooling) {}
  size_t dim() const { return static_cast<size_t>(table_->shape[1]); }

  void forward(const IdLists& lists, float* out, size_t stride, size_t column) const;
  void backward(const IdLists& lists, const float* dout, size_t stride, size_t column);

  // Reads and accumulates into `table` at row slots[id] instead of row id: a sharded table's cache of the
  // batch's rows (train/distributed/sharded_table.hpp). nullptr slots: row id of the whole table.
  void bind(Parameter* table, const std::vector<uint32_t>* slots) {
    table_ = table;
    slots_ = slots;
  }

 private:
  Parameter* table_;
  bool mean_;
  const std::vector<uint32_t>* slots_ = nullptr;

  size_t row_of(uint32_t id) const { return slots_ ? (*slots_)[id] : id; }
};

// y = x W^T + b with W [out, in] (the SDK's layout).
class Linear {
 public:
  Linear(Parameter* weight, Parameter* bias) : weight_(weight), bias_(bias) {}
  size_t in() const { return static_cast<size_t>(weight_->shape[1]); }
  size_t out() const { return static_cast<size_t>(weight_->shape[0]); }
  const Parameter& weight() const { return *weight_; }
  const Parameter& bias() const { return *bias_; }
  // PyTorch's default: U(+-1/sqrt(fan_in)) for weight and bias.
  void init(Rng& rng);

  void forward(const float* x, size_t batch, float* y) const;
  // dx may be nullptr when the input needs no gradient.
  void backward(const float* x, const float* dy, size_t batch, float* dx);

 private:
  Parameter* weight_;
  Parameter* bias_;
};

// PReLU with one alpha per unit: y = x for x > 0, alpha[k] x otherwise; x and y are [batch, units].
void prelu_forward(const float* x, size_t batch, size_t units, const float* alpha, float* y);
// dx = dy * (x > 0 ? 1 : alpha); dalpha accumulates dy * x over the rows where x <= 0.
void prelu_backward(const float* x, const float* dy, size_t batch, size_t units, const float* alpha, float* dx, float* dalpha);

// Glorot (Xavier) uniform over the whole [rows, cols] shape: U(+-sqrt(6 / (rows + cols))), TensorFlow's
// default initialiser, which the official CAN code uses for every table and kernel.
void glorot_uniform(Parameter& parameter, Rng& rng);

void relu_forward(const float* x, size_t n, float* y);
// dx = dy where the output was positive.
void relu_backward(const float* y, const float* dy, size_t n, float* dx);

// Row-wise y = x / max(||x||, eps), eps as in the SDK's tower.
void l2_normalize_forward(const float* x, size_t batch, size_t dim, float* y);
void l2_normalize_backward(const float* x, const float* y, const float* dy, size_t batch, size_t dim, float* dx);

}  // namespace funnel::train
