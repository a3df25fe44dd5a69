#include "train/core/momentum_tail_adam.hpp"

#include <cmath>

namespace funnel::train {

MomentumTailAdam::MomentumTailAdam(std::vector<Parameter*> tables, const SparseOptimizerOptions& options)
    : tables_(std::move(tables)), options_(options) {
  check_sparse_tables(tables_, "momentum_tail_adam");
  for (const Parameter* p : tables_) {
    const size_t rows = p->size() / p->row_size;
    m_.emplace_back(p->size(), 0.0f);
    v_.emplace_back(p->size(), 0.0f);
    rate_.emplace_back(rows, 0.0f);
    inv_sqrt_c2_.emplace_back(rows, 0.0f);
    last_.emplace_back(rows, 0u);
  }
}

void MomentumTailAdam::step() {
  ++step_;
  const std::vector<TouchedRow> rows = take_touched_rows(tables_);
  const float b1 = options_.beta1, b2 = options_.beta2, eps = options_.epsilon;
  // As dense Adam (adam.cpp): PyTorch's form, the global step's bias correction.
  const double correction1 = 1.0 - std::pow(static_cast<double>(b1), static_cast<double>(step_));
  const double correction2 = 1.0 - std::pow(static_cast<double>(b2), static_cast<double>(step_));
  const float step_size = static_cast<float>(options_.learning_rate / correction1);
  const float inv_sqrt_c2 = static_cast<float>(1.0 / std::sqrt(correction2));
  const double r = static_cast<double>(b1) / std::sqrt(static_cast<double>(b2));
  const float with_tail = static_cast<float>(1.0 / (1.0 - r));  // 1 + r + r^2 + ...
#pragma omp parallel for schedule(dynamic, 32)
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto [t, row] = rows[i];
    Parameter& p = *tables_[t];
    const size_t begin = row * p.row_size, end = begin + p.row_size;
    float* m = m_[t].data();
    float* v = v_[t].data();
    float* value = p.value.data();
    float* grad = p.grad.data();
    if (last_[t][row] > 0) {
      // The n zero-gradient steps since the last touch happened; the tail beyond them did not.
      const double n = static_cast<double>(step_ - static_cast<long>(last_[t][row]) - 1);
      const float cut = static_cast<float>(rate_[t][row] * std::pow(r, n + 1.0) / (1.0 - r));
      const float decay1 = static_cast<float>(std::pow(static_cast<double>(b1), n));
      const float decay2 = static_cast<float>(std::pow(static_cast<double>(b2), n));
      const float c2 = inv_sqrt_c2_[t][row];
      for (size_t e = begin; e < end; ++e) {
        value[e] += cut * m[e] / (std::sqrt(v[e]) * c2 + eps);
        m[e] *= decay1;
        v[e] *= decay2;
      }
    }
    const float move = step_size * with_tail;
    for (size_t e = begin; e < end; ++e) {
      const float g = grad[e];
      m[e] = b1 * m[e] + (1.0f - b1) * g;
      v[e] = b2 * v[e] + (1.0f - b2) * g * g;
      value[e] -= move * m[e] / (std::sqrt(v[e]) * inv_sqrt_c2 + eps);
      grad[e] = 0.0f;
    }
    last_[t][row] = static_cast<uint32_t>(step_);
    rate_[t][row] = step_size;
    inv_sqrt_c2_[t][row] = inv_sqrt_c2;
  }
}

void MomentumTailAdam::register_state(TrainingState& state) {
  for (size_t t = 0; t < tables_.size(); ++t) {
    const std::string& name = tables_[t]->name;
    state.array("tail_adam_m/" + name, m_[t]);
    state.array("tail_adam_v/" + name, v_[t]);
    state.array("tail_adam_last/" + name, last_[t]);
    state.array("tail_adam_rate/" + name, rate_[t]);
    state.array("tail_adam_c2/" + name, inv_sqrt_c2_[t]);
  }
  state.value("tail_adam_step", step_);
}

}  // namespace funnel::train
