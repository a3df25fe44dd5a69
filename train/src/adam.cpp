#include "adam.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace funnel::train {

Adam::Adam(std::vector<Parameter*> parameters, AdamOptions options) : parameters_(std::move(parameters)), options_(options) {
  for (const Parameter* p : parameters_) {
    m_.emplace_back(p->size(), 0.0f);
    v_.emplace_back(p->size(), 0.0f);
  }
}

void Adam::restore(State state) {
  if (state.m.size() != m_.size() || state.v.size() != v_.size())
    throw std::invalid_argument("optimiser state does not match the model's parameters");
  for (size_t i = 0; i < m_.size(); ++i)
    if (state.m[i].size() != m_[i].size() || state.v[i].size() != v_[i].size())
      throw std::invalid_argument("optimiser state does not match parameter '" + parameters_[i]->name + "'");
  m_ = std::move(state.m);
  v_ = std::move(state.v);
  step_ = state.step;
}

void Adam::step() {
  ++step_;
  const double correction1 = 1.0 - std::pow(static_cast<double>(options_.beta1), static_cast<double>(step_));
  const double correction2 = 1.0 - std::pow(static_cast<double>(options_.beta2), static_cast<double>(step_));
  // PyTorch's form: p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps).
  const float step_size = static_cast<float>(options_.learning_rate / correction1);
  const float inv_sqrt_c2 = static_cast<float>(1.0 / std::sqrt(correction2));
  const float b1 = options_.beta1, b2 = options_.beta2, eps = options_.epsilon;
  // Work items of at most 64K floats, so that one large table does not leave a thread idle. Updates
  // are element-wise and independent: the result does not depend on the number of threads.
  struct Chunk {
    size_t parameter, begin, end;
  };
  std::vector<Chunk> chunks;
  constexpr size_t kChunk = 1 << 16;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    Parameter& p = *parameters_[i];
    if (p.sparse && options_.lazy) {
      for (uint32_t row : p.touched) chunks.push_back({i, row * p.row_size, (row + 1) * p.row_size});
    } else {
      for (size_t begin = 0; begin < p.size(); begin += kChunk) chunks.push_back({i, begin, std::min(p.size(), begin + kChunk)});
    }
  }
#pragma omp parallel for schedule(dynamic, 16)
  for (size_t c = 0; c < chunks.size(); ++c) {
    const Chunk& chunk = chunks[c];
    float* m = m_[chunk.parameter].data();
    float* v = v_[chunk.parameter].data();
    float* value = parameters_[chunk.parameter]->value.data();
    float* grad = parameters_[chunk.parameter]->grad.data();
    for (size_t k = chunk.begin; k < chunk.end; ++k) {
      const float g = grad[k];
      m[k] = b1 * m[k] + (1.0f - b1) * g;
      v[k] = b2 * v[k] + (1.0f - b2) * g * g;
      value[k] -= step_size * m[k] / (std::sqrt(v[k]) * inv_sqrt_c2 + eps);
      grad[k] = 0.0f;
    }
  }
  for (Parameter* p : parameters_) {
    if (!p->sparse) continue;
    for (uint32_t row : p->touched) p->is_touched[row] = 0;
    p->touched.clear();
  }
}

}  // namespace funnel::train
