// Sparse Adam with per-row step counts: Adam (Kingma & Ba 2015, Algorithm 1) applied to the rows a step
// touched, each row's bias correction taken at the number of steps that row has had, not the global step.
#pragma once

#include <cstdint>
#include <vector>

#include "train/core/sparse_optimizer.hpp"

namespace funnel::train {

class SparseAdam : public SparseOptimizer {
 public:
  SparseAdam(std::vector<Parameter*> tables, const SparseOptimizerOptions& options);
  void step() override;
  void set_learning_rate(float rate) override { options_.learning_rate = rate; }
  // "sparse_adam_m/<table>", "sparse_adam_v/<table>" (floats) and "sparse_adam_steps/<table>" (one count per row).
  void register_state(TrainingState& state) override;

  // Read access for tests.
  const std::vector<float>& m(size_t table) const { return m_[table]; }
  const std::vector<float>& v(size_t table) const { return v_[table]; }
  const std::vector<uint32_t>& row_steps(size_t table) const { return steps_[table]; }

 private:
  std::vector<Parameter*> tables_;
  SparseOptimizerOptions options_;
  std::vector<std::vector<float>> m_, v_;
  std::vector<std::vector<uint32_t>> steps_;
};

}  // namespace funnel::train
