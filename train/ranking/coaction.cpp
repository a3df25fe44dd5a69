// CAN's co-action unit: the SDK's forward, and the backward pass. Per order c (eq. 11) the micro-MLP runs on feed^c:
// h_0 = feed^c, h_l = tanh(h_{l-1} W_l + b_l) for l < L, h_L = h_{L-1} W_L + b_L (eq. 5-9, with the
// official code's tanh between layers and none after the last), and the unit outputs, per order, the
// sum over the feed rows (the behaviours, eq. 10) of every h_l. The last layer being linear, its summed
// output is (sum_r h_{L-1,r}) W_L + rows * b_L, which the backward uses too.
#include "train/ranking/coaction.hpp"

#include <algorithm>

#include "funnel/kernels.hpp"

namespace funnel::train {

CoActionUnit::CoActionUnit(const CoActionView& shape) : shape_(shape), block_(shape.block_size()) {
  order_cache_ = shape_.feed_dim;
  widest_ = shape_.feed_dim;
  size_t param = 0, in = shape_.feed_dim;
  for (size_t l = 0; l < shape_.layer_sizes.size(); ++l) {
    const size_t width = shape_.layer_sizes[l];
    if (l + 1 < shape_.layer_sizes.size()) order_cache_ += width;
    widest_ = std::max(widest_, width);
    weight_at_.push_back(param);
    dout_at_.push_back(outputs_per_order_);
    in_of_.push_back(in);
    param += in * width + (shape_.bias ? width : 0);
    outputs_per_order_ += width;
    in = width;
  }
}

size_t CoActionUnit::scratch_size(size_t rows) const { return 2 * std::max<size_t>(rows, 1) * widest_ + 2 * widest_ + widest_ * widest_; }

void CoActionUnit::forward(const float* induction_row, const float* feed, size_t rows, float* cache, float* out) const {
  coaction_feed_powers(shape_, feed, rows, cache);
  coaction_forward(shape_, induction_row, rows, cache, out);
}

void CoActionUnit::backward(const float* induction_row, size_t rows, const float* cache, const float* dout,
                            float* scratch, float* dinduction, float* dfeed) const {
  const size_t layers = shape_.layer_sizes.size();
  const size_t dim = shape_.feed_dim;
  // The cache holds, per order, the layer inputs one after the other: layer l's input starts at
  // rows * (sum of the earlier layers' inputs).
  const auto input_at = [&](size_t l) {
    size_t at = 0;
    for (size_t k = 0; k < l; ++k) at += rows * in_of_[k];
    return at;
  };
  float* grad = scratch;                                    // [rows, widest]: d loss / d (layer input)
  float* grad_next = scratch + std::max<size_t>(rows, 1) * widest_;
  float* pooled = grad_next + std::max<size_t>(rows, 1) * widest_;  // [widest]
  float* common = pooled + widest_;                                 // [widest]
  float* transposed = common + widest_;                             // [widest, widest]

  for (uint32_t c = 0; c < shape_.orders; ++c) {
    const size_t block_at = shape_.order_independent ? c * block_ : 0;
    const float* block = induction_row + block_at;
    float* dblock = dinduction + block_at;
    const float* order_cache = cache + c * rows * order_cache_;
    const float* order_dout = dout + c * outputs_per_order_;

    // The last layer: its summed output depends on the rows only through their sum.
    const size_t last = layers - 1;
    const size_t width_last = shape_.layer_sizes[last];
    const size_t in_last = in_of_[last];
    const float* x_last = order_cache + input_at(last);
    const float* g_last = order_dout + dout_at_[last];
    std::fill(pooled, pooled + in_last, 0.0f);
    for (size_t r = 0; r < rows; ++r)
      for (size_t i = 0; i < in_last; ++i) pooled[i] += x_last[r * in_last + i];
    const float* w_last = block + weight_at_[last];
    float* dw_last = dblock + weight_at_[last];
    for (size_t i = 0; i < in_last; ++i)
      for (size_t o = 0; o < width_last; ++o) dw_last[i * width_last + o] += pooled[i] * g_last[o];
    if (shape_.bias)
      for (size_t o = 0; o < width_last; ++o) dw_last[in_last * width_last + o] += static_cast<float>(rows) * g_last[o];
    // Every row's input to the last layer receives the same gradient W_L g (+ the pooled gradient of
    // that input when it is a hidden layer's output, which is kept too).
    for (size_t i = 0; i < in_last; ++i) {
      float sum = 0.0f;
      for (size_t o = 0; o < width_last; ++o) sum += w_last[i * width_last + o] * g_last[o];
      common[i] = sum + (last > 0 ? order_dout[dout_at_[last - 1] + i] : 0.0f);
    }
    for (size_t r = 0; r < rows; ++r) std::copy(common, common + in_last, grad + r * in_last);

    // Hidden layers, last to first: row-wise through tanh and W_l.
    for (size_t l = last; l-- > 0;) {
      const size_t width = shape_.layer_sizes[l];
      const size_t in_l = in_of_[l];
      const float* h = order_cache + input_at(l + 1);  // this layer's output
      const float* x = order_cache + input_at(l);
      const float* w = block + weight_at_[l];
      float* dw = dblock + weight_at_[l];
      for (size_t k = 0; k < rows * width; ++k) grad[k] *= 1.0f - h[k] * h[k];  // through tanh
      // dW_l += X^T dZ and db_l += sum of dZ, vectorised along the layer's outputs.
      for (size_t r = 0; r < rows; ++r) {
        const float* dz = grad + r * width;
        for (size_t i = 0; i < in_l; ++i) {
          const float xi = x[r * in_l + i];
          float* dwi = dw + i * width;
          for (size_t o = 0; o < width; ++o) dwi[o] += xi * dz[o];
        }
        if (shape_.bias)
          for (size_t o = 0; o < width; ++o) dw[in_l * width + o] += dz[o];
      }
      // dX = dZ W^T, vectorised along the inputs through W^T, plus the pooled gradient of X itself
      // when X is a hidden layer's output.
      for (size_t i = 0; i < in_l; ++i)
        for (size_t o = 0; o < width; ++o) transposed[o * in_l + i] = w[i * width + o];
      kernels::matmul(grad, rows, width, transposed, in_l, grad_next);
      if (l > 0)
        for (size_t r = 0; r < rows; ++r)
          for (size_t i = 0; i < in_l; ++i) grad_next[r * in_l + i] += order_dout[dout_at_[l - 1] + i];
      std::swap(grad, grad_next);
    }

    // d feed^(c+1) / d feed = (c+1) feed^c, where feed^c is the previous order's cached power.
    const float* lower = c == 0 ? nullptr : order_cache - rows * order_cache_;
    for (size_t k = 0; k < rows * dim; ++k)
      dfeed[k] += (c == 0 ? 1.0f : static_cast<float>(c + 1) * lower[k]) * grad[k];
  }
}

}  // namespace funnel::train
