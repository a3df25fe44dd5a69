// Row-wise Adagrad, as FBGEMM's EXACT_ROWWISE_ADAGRAD (the optimiser TorchRec and DLRM train embedding
// tables with): Adagrad (Duchi, Hazan & Singer 2011) with one accumulator per row instead of one per
// element. For a touched row r with gradient g (D floats):
//   G_r += (1/D) sum_d g_d^2          w_r,d -= lr * g_d / (sqrt(G_r) + eps)
// One float of state per row, against Adam's two per element.
#pragma once

#include <vector>

#include "train/core/sparse_optimizer.hpp"

namespace funnel::train {

class RowwiseAdagrad : public SparseOptimizer {
 public:
  RowwiseAdagrad(std::vector<Parameter*> tables, const SparseOptimizerOptions& options);
  void step() override;
  void set_learning_rate(float rate) override { options_.learning_rate = rate; }
  // "rowwise_adagrad_sum/<table>": one accumulator per row.
  void register_state(TrainingState& state) override;

  const std::vector<float>& accumulator(size_t table) const { return sums_[table]; }

 private:
  std::vector<Parameter*> tables_;
  SparseOptimizerOptions options_;
  std::vector<std::vector<float>> sums_;
};

}  // namespace funnel::train
