// The co-action unit of CAN (Bian et al., WSDM 2022). Eq. 5-9: the induction feature's parameters
// P_induction are reshaped into the weights (and biases) of a micro-MLP whose input is the feed
// feature's embedding P_feed; eq. 11: multi-order enhancement feeds P_feed^c for c = 1..orders. As in the
// official code (CAN-Paper/Co-Action-Network, script/model.py, gen_coaction), every layer but the last is
// followed by tanh, every layer's output is kept, and the orders are concatenated. The trainer runs
// this same forward pass and adds the backward (train/ranking/coaction.cpp).
#include <algorithm>

#include "funnel/kernels.hpp"
#include "funnel/ranker.hpp"

namespace funnel {

namespace {

// Cache floats per feed row and order: the power, then every hidden layer's output.
size_t row_floats(const CoActionView& unit) {
  size_t floats = unit.feed_dim;
  for (size_t l = 0; l + 1 < unit.layer_sizes.size(); ++l) floats += unit.layer_sizes[l];
  return floats;
}

}  // namespace

uint32_t CoActionView::block_size() const {
  uint32_t size = 0, in = feed_dim;
  for (uint32_t out : layer_sizes) {
    size += in * out + (bias ? out : 0);
    in = out;
  }
  return size;
}

uint32_t CoActionView::output_dim() const {
  uint32_t sum = 0;
  for (uint32_t out : layer_sizes) sum += out;
  return sum * orders;
}

size_t CoActionView::cache_size(size_t rows) const {
  // One spare row of the widest input: the pooled input of the last layer.
  size_t widest = feed_dim;
  for (uint32_t size : layer_sizes) widest = std::max<size_t>(widest, size);
  return rows * row_floats(*this) * orders + widest;
}

void coaction_feed_powers(const CoActionView& unit, const float* feed, size_t rows, float* cache) {
  const size_t n = rows * unit.feed_dim;
  const size_t stride = rows * row_floats(unit);
  float* power = cache;
  std::copy(feed, feed + n, power);
  for (uint32_t c = 1; c < unit.orders; ++c) {
    float* next = power + stride;
    for (size_t i = 0; i < n; ++i) next[i] = power[i] * feed[i];
    power = next;
  }
}

void coaction_forward(const CoActionView& unit, const float* induction_row, size_t rows, float* cache, float* out) {
  const size_t layers = unit.layer_sizes.size();
  const size_t per_row = row_floats(unit);
  float* pooled = cache + rows * per_row * unit.orders;
  for (uint32_t c = 0; c < unit.orders; ++c) {
    const float* block = induction_row + (unit.order_independent ? c * unit.block_size() : 0);
    const float* x = cache + c * rows * per_row;  // feed^(c+1), then each hidden layer in turn
    float* next = const_cast<float*>(x) + rows * unit.feed_dim;
    uint32_t in = unit.feed_dim;
    for (size_t l = 0; l < layers; ++l) {
      const uint32_t width = unit.layer_sizes[l];
      const float* w = block;
      const float* b = unit.bias ? block + in * width : nullptr;
      block += in * width + (unit.bias ? width : 0);
      if (l + 1 == layers) {
        // The last layer is linear, so the sum over the rows commutes with it: (sum_r h_r) W + rows b.
        std::fill(pooled, pooled + in, 0.0f);
        for (size_t r = 0; r < rows; ++r)
          for (uint32_t i = 0; i < in; ++i) pooled[i] += x[r * in + i];
        kernels::matmul(pooled, 1, in, w, width, out);
        if (b)
          for (uint32_t o = 0; o < width; ++o) out[o] += static_cast<float>(rows) * b[o];
      } else {
        kernels::matmul(x, rows, in, w, width, next);
        if (b)
          for (size_t r = 0; r < rows; ++r)
            for (uint32_t o = 0; o < width; ++o) next[r * width + o] += b[o];
        kernels::tanh_inplace(next, rows * width);
        std::fill(out, out + width, 0.0f);
        for (size_t r = 0; r < rows; ++r)
          for (uint32_t o = 0; o < width; ++o) out[o] += next[r * width + o];
        x = next;
        next += rows * width;
      }
      out += width;
      in = width;
    }
  }
}

}  // namespace funnel
