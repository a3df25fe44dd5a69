#include "train/core/sparse_adam.hpp"

#include <cmath>

namespace funnel::train {

SparseAdam::SparseAdam(std::vector<Parameter*> tables, const SparseOptimizerOptions& options) : tables_(std::move(tables)), options_(options) {
  check_sparse_tables(tables_, "sparse_adam");
  for (const Parameter* p : tables_) {
    m_.emplace_back(p->size(), 0.0f);
    v_.emplace_back(p->size(), 0.0f);
    steps_.emplace_back(p->size() / p->row_size, 0u);
  }
}

void SparseAdam::step() {
  const std::vector<TouchedRow> rows = take_touched_rows(tables_);
  const float b1 = options_.beta1, b2 = options_.beta2, eps = options_.epsilon;
  const double lr = options_.learning_rate;
#pragma omp parallel for schedule(dynamic, 32)
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto [t, row] = rows[i];
    Parameter& p = *tables_[t];
    // Algorithm 1 with t = this row's own count of updates: a row first touched late starts with the
    // fully corrected step, as it would with a fresh Adam, instead of lazy Adam's under-corrected one.
    const uint32_t k = ++steps_[t][row];
    const double correction1 = 1.0 - std::pow(static_cast<double>(b1), static_cast<double>(k));
    const double correction2 = 1.0 - std::pow(static_cast<double>(b2), static_cast<double>(k));
    // PyTorch's form, as dense Adam (adam.cpp): p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps).
    const float step_size = static_cast<float>(lr / correction1);
    const float inv_sqrt_c2 = static_cast<float>(1.0 / std::sqrt(correction2));
    const size_t begin = row * p.row_size, end = begin + p.row_size;
    float* m = m_[t].data();
    float* v = v_[t].data();
    float* value = p.value.data();
    float* grad = p.grad.data();
    for (size_t e = begin; e < end; ++e) {
      const float g = grad[e];
      m[e] = b1 * m[e] + (1.0f - b1) * g;
      v[e] = b2 * v[e] + (1.0f - b2) * g * g;
      value[e] -= step_size * m[e] / (std::sqrt(v[e]) * inv_sqrt_c2 + eps);
      grad[e] = 0.0f;
    }
  }
}

void SparseAdam::register_state(TrainingState& state) {
  for (size_t t = 0; t < tables_.size(); ++t) {
    const std::string& name = tables_[t]->name;
    state.array("sparse_adam_m/" + name, m_[t]);
    state.array("sparse_adam_v/" + name, v_[t]);
    state.array("sparse_adam_steps/" + name, steps_[t]);
  }
}

}  // namespace funnel::train
