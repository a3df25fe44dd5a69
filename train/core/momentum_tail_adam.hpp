// Dense Adam's trajectory at a sparse optimiser's cost: Adam (Kingma & Ba 2015, Algorithm 1, global-step bias
// correction as dense Adam) on the touched rows, plus, in closed form, the zero-gradient steps dense Adam
// would give the row afterwards. After a touch dense Adam keeps moving a row while its first moment decays:
// step s later it moves by lr_s · b1^s m / (b2^(s/2) sqrt(v) / sqrt(c2) + eps) ≈ lr · r^s · u, with
// r = b1 / sqrt(b2) and u = m / (sqrt(v) / sqrt(c2) + eps) the touch's own normalised step, in all
// lr · u · r / (1 - r) ≈ 9 more steps (b1 = 0.9, b2 = 0.999). Lazy and sparse Adam drop that tail, which
// makes a rarely touched row learn about 10x slower than under dense Adam. Here:
//   at a touch: value -= lr · u / (1 - r)                       (the step and its whole tail, at once)
//   at the next touch, n steps later: value += lr0 · u0 · r^(n+1) / (1 - r), m *= b1^n, v *= b2^n
//                                                               (the tail's part that a touch cut off)
// which is dense Adam's path up to three approximations: eps and the bias corrections are held at the
// touch's values over the tail (exact once the global step is past a few thousand), the learning rate too
// (a schedule changes it slowly), and a row read between touches already holds its whole tail.
#pragma once

#include <cstdint>
#include <vector>

#include "train/core/sparse_optimizer.hpp"

namespace funnel::train {

class MomentumTailAdam : public SparseOptimizer {
 public:
  MomentumTailAdam(std::vector<Parameter*> tables, const SparseOptimizerOptions& options);
  void step() override;
  void set_learning_rate(float rate) override { options_.learning_rate = rate; }
  // "tail_adam_m/<table>", "tail_adam_v/<table>", per row "tail_adam_last/<table>" (the step of its last
  // touch), "tail_adam_rate/<table>" and "tail_adam_c2/<table>" (that step's lr/c1 and 1/sqrt(c2)), and the
  // global step "tail_adam_step".
  void register_state(TrainingState& state) override;

 private:
  std::vector<Parameter*> tables_;
  SparseOptimizerOptions options_;
  std::vector<std::vector<float>> m_, v_, rate_, inv_sqrt_c2_;
  std::vector<std::vector<uint32_t>> last_;
  long step_ = 0;
};

}  // namespace funnel::train
