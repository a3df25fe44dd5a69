// Optimisers for large embedding tables (the `sparse_optimizer` config key): a step updates the rows its
// batch touched (Parameter::touched) and nothing else, so its cost follows the batch, never a table's size.
// Every row's state (moments, step count, accumulator) sits at the row's own index and is read and written
// with that row alone: a process that holds some rows of a table updates those rows only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "train/core/adam.hpp"
#include "train/core/parameter.hpp"
#include "train/core/training_state.hpp"

namespace funnel::train {

struct SparseOptimizerOptions {
  float learning_rate = 1e-3f;
  float beta1 = 0.9f;  // sparse Adam's moments; row-wise Adagrad has none
  float beta2 = 0.999f;
  float epsilon = 1e-8f;
};

class SparseOptimizer {
 public:
  virtual ~SparseOptimizer() = default;
  // Updates every touched row of every table from its accumulated gradient, zeroes those gradients and
  // clears the touched lists. Rows are independent: the result does not depend on the number of threads.
  virtual void step() = 0;
  virtual void set_learning_rate(float rate) = 0;
  // Registers the per-row state under the optimiser's own names ("<name>_.../<table>").
  virtual void register_state(TrainingState& state) = 0;
};

// A (table index, row) pair a step updates.
struct TouchedRow {
  uint32_t table, row;
};
// The touched rows of every table, in table order then touch order, with the touched marks cleared.
std::vector<TouchedRow> take_touched_rows(const std::vector<Parameter*>& tables);
// Throws std::invalid_argument naming the first parameter that is not an embedding table.
void check_sparse_tables(const std::vector<Parameter*>& tables, const char* optimizer);

// "sparse_adam", "momentum_tail_adam" or "rowwise_adagrad"; every table must be sparse (Parameter::make_sparse).
std::unique_ptr<SparseOptimizer> make_sparse_optimizer(const std::string& name, std::vector<Parameter*> tables,
                                                       const SparseOptimizerOptions& options);

// A trainer's optimiser: embedding tables of at least `min_rows` rows take the sparse optimiser named
// `sparse` ("none": Adam for all), every other parameter (dense layers, small tables) Adam as configured.
class TrainerOptimizer {
 public:
  // `whole_rows` (empty: each table's own): per parameter, the rows of the whole table it holds some rows of
  // (a rank's shard, ranking/ranker_parallel.hpp), so that every rank picks the same optimiser for a table.
  TrainerOptimizer(const std::vector<Parameter*>& parameters, const AdamOptions& adam, const std::string& sparse, size_t min_rows,
                   float sparse_learning_rate, const std::vector<size_t>& whole_rows = {});
  void step();
  // The sparse optimiser's rate moves with Adam's: a schedule scales both alike.
  void set_learning_rate(float rate);
  void register_state(TrainingState& state);
  Adam& adam() { return adam_; }
  // Adam's parameters, in the order Adam's row indices (catch_up_rows) use.
  const std::vector<Parameter*>& adam_parameters() const { return adam_parameters_; }
  const std::vector<Parameter*>& sparse_tables() const { return sparse_tables_; }

 private:
  std::vector<Parameter*> adam_parameters_, sparse_tables_;
  Adam adam_;
  std::unique_ptr<SparseOptimizer> sparse_;
  float base_rate_, sparse_base_rate_;
};

}  // namespace funnel::train
