#include "train/core/rowwise_adagrad.hpp"

#include <cmath>

namespace funnel::train {

RowwiseAdagrad::RowwiseAdagrad(std::vector<Parameter*> tables, const SparseOptimizerOptions& options)
    : tables_(std::move(tables)), options_(options) {
  check_sparse_tables(tables_, "rowwise_adagrad");
  for (const Parameter* p : tables_) sums_.emplace_back(p->size() / p->row_size, 0.0f);
}

void RowwiseAdagrad::step() {
  const std::vector<TouchedRow> rows = take_touched_rows(tables_);
  const float lr = options_.learning_rate, eps = options_.epsilon;
#pragma omp parallel for schedule(dynamic, 32)
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto [t, row] = rows[i];
    Parameter& p = *tables_[t];
    const size_t begin = row * p.row_size, end = begin + p.row_size;
    float* value = p.value.data();
    float* grad = p.grad.data();
    float squares = 0.0f;
    for (size_t e = begin; e < end; ++e) squares += grad[e] * grad[e];
    float& sum = sums_[t][row];
    sum += squares / static_cast<float>(p.row_size);
    const float multiplier = lr / (std::sqrt(sum) + eps);
    for (size_t e = begin; e < end; ++e) {
      value[e] -= multiplier * grad[e];
      grad[e] = 0.0f;
    }
  }
}

void RowwiseAdagrad::register_state(TrainingState& state) {
  for (size_t t = 0; t < tables_.size(); ++t) state.array("rowwise_adagrad_sum/" + tables_[t]->name, sums_[t]);
}

}  // namespace funnel::train
