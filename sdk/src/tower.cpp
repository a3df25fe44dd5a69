#include "funnel/tower.hpp"

#include <algorithm>
#include <cmath>

#include "funnel/kernels.hpp"

namespace funnel {

uint32_t TowerView::input_dim() const {
  uint32_t dim = 0;
  for (const auto& input : inputs) dim += input.table ? input.dim : 1;
  return dim;
}

uint32_t TowerView::output_dim() const { return layers.empty() ? input_dim() : layers.back().out; }

size_t TowerView::scratch_size() const {
  size_t widest = input_dim();
  for (const auto& layer : layers) widest = std::max<size_t>(widest, layer.out);
  return 2 * widest;
}

void activate(const DenseLayerView& layer, float* y) {
  const size_t n = layer.out;
  switch (layer.activation) {
    case Activation::kNone: break;
    case Activation::kRelu:
      for (size_t i = 0; i < n; ++i) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
      break;
    case Activation::kTanh:
      kernels::tanh_inplace(y, n);
      break;
    case Activation::kPRelu:
      for (size_t i = 0; i < n; ++i) y[i] = y[i] > 0.0f ? y[i] : layer.alpha[i] * y[i];
      break;
  }
}

void tower_forward(const TowerView& tower, const EncodedFeatures& features, float* scratch, float* out) {
  const size_t half = tower.scratch_size() / 2;
  float* x = scratch;
  float* y = scratch + half;

  // Embedding bags, concatenated in input order.
  float* cursor = x;
  for (const auto& input : tower.inputs) {
    if (!input.table) {
      *cursor++ = features.dense[input.feature];
      continue;
    }
    const auto ids = features.ids_of(input.feature);
    std::fill(cursor, cursor + input.dim, 0.0f);
    for (uint32_t id : ids) {
      const float* row = input.table + static_cast<size_t>(id) * input.dim;
      for (uint32_t d = 0; d < input.dim; ++d) cursor[d] += row[d];
    }
    if (input.pooling == Pooling::kMean && ids.size() > 1) {
      const float inv = 1.0f / static_cast<float>(ids.size());
      for (uint32_t d = 0; d < input.dim; ++d) cursor[d] *= inv;
    }
    cursor += input.dim;
  }

  size_t width = tower.input_dim();
  for (const auto& layer : tower.layers) {
    kernels::dense_forward(layer.weight, layer.bias, layer.out, layer.in, x, y);
    activate(layer, y);
    std::swap(x, y);
    width = layer.out;
  }

  if (tower.l2_normalize) {
    const float norm = std::sqrt(kernels::dot(x, x, width));
    const float inv = 1.0f / std::max(norm, kL2Epsilon);
    for (size_t i = 0; i < width; ++i) out[i] = x[i] * inv;
  } else {
    std::copy(x, x + width, out);
  }
}

}  // namespace funnel
