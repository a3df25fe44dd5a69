#include "train/core/sparse_optimizer.hpp"

#include <stdexcept>

#include "train/core/momentum_tail_adam.hpp"
#include "train/core/rowwise_adagrad.hpp"
#include "train/core/sparse_adam.hpp"

namespace funnel::train {

std::vector<TouchedRow> take_touched_rows(const std::vector<Parameter*>& tables) {
  std::vector<TouchedRow> rows;
  for (uint32_t t = 0; t < tables.size(); ++t) {
    Parameter& p = *tables[t];
    for (uint32_t row : p.touched) {
      rows.push_back({t, row});
      p.is_touched[row] = 0;
    }
    p.touched.clear();
  }
  return rows;
}

void check_sparse_tables(const std::vector<Parameter*>& tables, const char* optimizer) {
  for (const Parameter* p : tables)
    if (!p->sparse || p->row_size == 0) throw std::invalid_argument(std::string(optimizer) + ": parameter '" + p->name + "' is not an embedding table");
}

std::unique_ptr<SparseOptimizer> make_sparse_optimizer(const std::string& name, std::vector<Parameter*> tables,
                                                       const SparseOptimizerOptions& options) {
  if (name == "sparse_adam") return std::make_unique<SparseAdam>(std::move(tables), options);
  if (name == "momentum_tail_adam") return std::make_unique<MomentumTailAdam>(std::move(tables), options);
  if (name == "rowwise_adagrad") return std::make_unique<RowwiseAdagrad>(std::move(tables), options);
  throw std::invalid_argument("unknown sparse optimizer '" + name + "' (sparse_adam, momentum_tail_adam or rowwise_adagrad)");
}

namespace {

std::vector<Parameter*> pick(const std::vector<Parameter*>& parameters, bool sparse, const std::string& name, size_t min_rows,
                             const std::vector<size_t>& whole_rows) {
  std::vector<Parameter*> picked;
  for (size_t i = 0; i < parameters.size(); ++i) {
    Parameter* p = parameters[i];
    const bool large = name != "none" && p->sparse && (whole_rows.empty() ? p->size() / p->row_size : whole_rows[i]) >= min_rows;
    if (large == sparse) picked.push_back(p);
  }
  return picked;
}

}  // namespace

TrainerOptimizer::TrainerOptimizer(const std::vector<Parameter*>& parameters, const AdamOptions& adam, const std::string& sparse,
                                   size_t min_rows, float sparse_learning_rate, const std::vector<size_t>& whole_rows)
    : adam_parameters_(pick(parameters, false, sparse, min_rows, whole_rows)),
      sparse_tables_(pick(parameters, true, sparse, min_rows, whole_rows)),
      adam_(adam_parameters_, adam),
      base_rate_(adam.learning_rate),
      sparse_base_rate_(sparse_learning_rate > 0.0f ? sparse_learning_rate : adam.learning_rate) {
  if (!sparse_tables_.empty()) {
    SparseOptimizerOptions options{sparse_base_rate_, adam.beta1, adam.beta2, adam.epsilon};
    sparse_ = make_sparse_optimizer(sparse, sparse_tables_, options);
  }
}

void TrainerOptimizer::step() {
  adam_.step();
  if (sparse_) sparse_->step();
}

void TrainerOptimizer::set_learning_rate(float rate) {
  adam_.set_learning_rate(rate);
  if (sparse_) sparse_->set_learning_rate(base_rate_ > 0.0f ? sparse_base_rate_ * (rate / base_rate_) : sparse_base_rate_);
}

void TrainerOptimizer::register_state(TrainingState& state) {
  adam_.register_state(state);
  if (sparse_) sparse_->register_state(state);
}

}  // namespace funnel::train
