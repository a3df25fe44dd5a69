// The co-action unit of CAN (Bian et al., WSDM 2022), inference side. Eq. 5-9: the induction feature's
// parameters P_induction are reshaped into the weights (and biases) of a micro-MLP whose input is the
// feed feature's embedding P_feed; eq. 11: multi-order enhancement feeds P_feed^c for c = 1..orders.
// As in the official code (CAN-Paper/Co-Action-Network, script/model.py, gen_coaction), every layer but
// the last is followed by tanh, every layer's output is kept, and the orders are concatenated.
#include <algorithm>
#include <cmath>

#include "funnel/kernels.hpp"
#include "funnel/ranker.hpp"

namespace funnel {

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

void coaction_feed_powers(const CoActionView& unit, const float* feed, size_t feed_rows, float* powers) {
  const size_t n = feed_rows * unit.feed_dim;
  std::copy(feed, feed + n, powers);
  for (uint32_t c = 1; c < unit.orders; ++c)
    for (size_t i = 0; i < n; ++i) powers[c * n + i] = powers[(c - 1) * n + i] * feed[i];
}

void coaction_forward(const CoActionView& unit, const float* induction_row, const float* powers, size_t feed_rows,
                      float* micro, float* out) {
  const size_t layers = unit.layer_sizes.size();
  const uint32_t widest = std::max(unit.feed_dim, *std::max_element(unit.layer_sizes.begin(), unit.layer_sizes.end()));
  float* h = micro;
  float* next = micro + feed_rows * widest;
  for (uint32_t c = 0; c < unit.orders; ++c) {
    const float* block = induction_row + (unit.order_independent ? c * unit.block_size() : 0);
    const float* x = powers + c * feed_rows * unit.feed_dim;
    uint32_t in = unit.feed_dim;
    for (size_t l = 0; l < layers; ++l) {
      const uint32_t width = unit.layer_sizes[l];
      const float* w = block;
      const float* b = unit.bias ? block + in * width : nullptr;
      block += in * width + (unit.bias ? width : 0);
      if (l + 1 == layers) {
        // The last layer is linear, so the sum over feed rows commutes with it: (sum_r h_r) W + n b.
        float* pooled = next;
        std::fill(pooled, pooled + in, 0.0f);
        for (size_t r = 0; r < feed_rows; ++r)
          for (uint32_t i = 0; i < in; ++i) pooled[i] += x[r * in + i];
        kernels::matmul(pooled, 1, in, w, width, out);
        if (b)
          for (uint32_t o = 0; o < width; ++o) out[o] += static_cast<float>(feed_rows) * b[o];
      } else {
        kernels::matmul(x, feed_rows, in, w, width, next);
        std::fill(out, out + width, 0.0f);
        for (size_t r = 0; r < feed_rows; ++r) {
          float* row = next + r * width;
          for (uint32_t o = 0; o < width; ++o) {
            row[o] = std::tanh(b ? row[o] + b[o] : row[o]);
            out[o] += row[o];
          }
        }
        std::swap(h, next);
        x = h;
      }
      out += width;
      in = width;
    }
  }
}

}  // namespace funnel
