// CAN's co-action unit with its backward pass. Per order c (eq. 11) the micro-MLP runs on feed^c:
// h_0 = feed^c, h_l = tanh(h_{l-1} W_l + b_l) for l < L, h_L = h_{L-1} W_L + b_L (eq. 5-9, with the
// official code's tanh between layers and none after the last), and the unit outputs, per order, the
// sum over the feed rows (the behaviours, eq. 10) of every h_l. The last layer being linear, its summed
// output is (sum_r h_{L-1,r}) W_L + rows * b_L, which the forward and the backward both use.
#include "coaction.hpp"

#include <algorithm>
#include <cmath>

namespace funnel::train {

CoActionUnit::CoActionUnit(const CoActionView& shape) : shape_(shape), block_(shape.block_size()) {
  order_cache_ = shape_.feed_dim;
  widest_ = shape_.feed_dim;
  for (size_t l = 0; l < shape_.layer_sizes.size(); ++l) {
    if (l + 1 < shape_.layer_sizes.size()) order_cache_ += shape_.layer_sizes[l];
    widest_ = std::max<size_t>(widest_, shape_.layer_sizes[l]);
  }
}

size_t CoActionUnit::cache_size(size_t rows) const { return rows * order_cache_ * shape_.orders; }

size_t CoActionUnit::scratch_size(size_t rows) const { return 2 * std::max<size_t>(rows, 1) * widest_ + 2 * widest_; }

void CoActionUnit::forward(const float* induction_row, const float* feed, size_t rows, float* cache, float* out) const {
  const size_t layers = shape_.layer_sizes.size();
  const size_t dim = shape_.feed_dim;
  for (uint32_t c = 0; c < shape_.orders; ++c) {
    const float* block = induction_row + (shape_.order_independent ? c * block_ : 0);
    // Cache layout per order: the power [rows, dim], then each hidden layer [rows, size].
    float* power = cache + c * rows * order_cache_;
    if (c == 0) {
      std::copy(feed, feed + rows * dim, power);
    } else {
      const float* previous = power - rows * order_cache_;
      for (size_t i = 0; i < rows * dim; ++i) power[i] = previous[i] * feed[i];
    }
    const float* x = power;
    float* next = power + rows * dim;
    size_t in = dim;
    for (size_t l = 0; l < layers; ++l) {
      const size_t width = shape_.layer_sizes[l];
      const float* w = block;
      const float* b = shape_.bias ? block + in * width : nullptr;
      block += in * width + (shape_.bias ? width : 0);
      if (l + 1 == layers) {
        for (size_t o = 0; o < width; ++o) out[o] = b ? static_cast<float>(rows) * b[o] : 0.0f;
        for (size_t r = 0; r < rows; ++r)
          for (size_t i = 0; i < in; ++i) {
            const float xi = x[r * in + i];
            for (size_t o = 0; o < width; ++o) out[o] += xi * w[i * width + o];
          }
      } else {
        std::fill(out, out + width, 0.0f);
        for (size_t r = 0; r < rows; ++r) {
          float* h = next + r * width;
          for (size_t o = 0; o < width; ++o) h[o] = b ? b[o] : 0.0f;
          for (size_t i = 0; i < in; ++i) {
            const float xi = x[r * in + i];
            for (size_t o = 0; o < width; ++o) h[o] += xi * w[i * width + o];
          }
          for (size_t o = 0; o < width; ++o) {
            h[o] = std::tanh(h[o]);
            out[o] += h[o];
          }
        }
        x = next;
        next += rows * width;
      }
      out += width;
      in = width;
    }
  }
}

void CoActionUnit::backward(const float* induction_row, size_t rows, const float* cache, const float* dout,
                            float* scratch, float* dinduction, float* dfeed) const {
  const size_t layers = shape_.layer_sizes.size();
  const size_t dim = shape_.feed_dim;
  // Offsets of each layer's weights (and biases) in a block, of its input in the cache, and of its
  // output in one order's dout.
  std::vector<size_t> weight_at(layers), input_at(layers), dout_at(layers), in_of(layers);
  size_t param = 0, cached = 0, produced = 0, in = dim;
  for (size_t l = 0; l < layers; ++l) {
    weight_at[l] = param;
    input_at[l] = cached;
    dout_at[l] = produced;
    in_of[l] = in;
    param += in * shape_.layer_sizes[l] + (shape_.bias ? shape_.layer_sizes[l] : 0);
    cached += rows * in;
    produced += shape_.layer_sizes[l];
    in = shape_.layer_sizes[l];
  }
  float* grad = scratch;                                    // [rows, widest]: d loss / d (layer input)
  float* grad_next = scratch + std::max<size_t>(rows, 1) * widest_;
  float* pooled = grad_next + std::max<size_t>(rows, 1) * widest_;  // [widest]
  float* common = pooled + widest_;                                 // [widest]

  for (uint32_t c = 0; c < shape_.orders; ++c) {
    const size_t block_at = shape_.order_independent ? c * block_ : 0;
    const float* block = induction_row + block_at;
    float* dblock = dinduction + block_at;
    const float* order_cache = cache + c * rows * order_cache_;
    const float* order_dout = dout + c * produced;

    // The last layer: its summed output depends on the rows only through their sum.
    const size_t last = layers - 1;
    const size_t width_last = shape_.layer_sizes[last];
    const size_t in_last = in_of[last];
    const float* x_last = order_cache + input_at[last];
    const float* g_last = order_dout + dout_at[last];
    std::fill(pooled, pooled + in_last, 0.0f);
    for (size_t r = 0; r < rows; ++r)
      for (size_t i = 0; i < in_last; ++i) pooled[i] += x_last[r * in_last + i];
    const float* w_last = block + weight_at[last];
    float* dw_last = dblock + weight_at[last];
    for (size_t i = 0; i < in_last; ++i)
      for (size_t o = 0; o < width_last; ++o) dw_last[i * width_last + o] += pooled[i] * g_last[o];
    if (shape_.bias)
      for (size_t o = 0; o < width_last; ++o) dw_last[in_last * width_last + o] += static_cast<float>(rows) * g_last[o];
    // Every row's input to the last layer receives the same gradient W_L g (+ the pooled gradient of
    // that input when it is a hidden layer's output, which is kept too).
    for (size_t i = 0; i < in_last; ++i) {
      float sum = 0.0f;
      for (size_t o = 0; o < width_last; ++o) sum += w_last[i * width_last + o] * g_last[o];
      common[i] = sum + (last > 0 ? order_dout[dout_at[last - 1] + i] : 0.0f);
    }
    for (size_t r = 0; r < rows; ++r) std::copy(common, common + in_last, grad + r * in_last);

    // Hidden layers, last to first: row-wise through tanh and W_l.
    for (size_t l = last; l-- > 0;) {
      const size_t width = shape_.layer_sizes[l];
      const size_t in_l = in_of[l];
      const float* h = order_cache + input_at[l + 1];  // this layer's output
      const float* x = order_cache + input_at[l];
      const float* w = block + weight_at[l];
      float* dw = dblock + weight_at[l];
      for (size_t r = 0; r < rows; ++r) {
        float* dz = grad + r * width;
        for (size_t o = 0; o < width; ++o) dz[o] *= 1.0f - h[r * width + o] * h[r * width + o];
        const float* xr = x + r * in_l;
        float* dx = grad_next + r * in_l;
        for (size_t i = 0; i < in_l; ++i) {
          float sum = 0.0f;
          for (size_t o = 0; o < width; ++o) {
            dw[i * width + o] += xr[i] * dz[o];
            sum += w[i * width + o] * dz[o];
          }
          dx[i] = sum + (l > 0 ? order_dout[dout_at[l - 1] + i] : 0.0f);
        }
        if (shape_.bias)
          for (size_t o = 0; o < width; ++o) dw[in_l * width + o] += dz[o];
      }
      std::swap(grad, grad_next);
    }

    // d feed^(c+1) / d feed = (c+1) feed^c, where feed^c is the previous order's cached power.
    const float* lower = c == 0 ? nullptr : order_cache - rows * order_cache_;
    for (size_t k = 0; k < rows * dim; ++k)
      dfeed[k] += (c == 0 ? 1.0f : static_cast<float>(c + 1) * lower[k]) * grad[k];
  }
}

}  // namespace funnel::train
