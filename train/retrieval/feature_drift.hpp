// Feature drift (CBNS eq. 5): D(I, t; dt) = sum over items I of || f(I; theta_t) - f(I; theta_{t-dt}) ||_2,
// the distance the item tower moves a fixed sample of items in dt steps. The paper uses it to argue that
// embeddings become stable after an early phase, which is when reusing stale ones (CBNS) becomes safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace funnel::train {

struct DriftRecord {
  long step = 0;       // t: the step at which the sample was embedded again
  uint32_t delta = 0;  // dt
  double sum = 0;      // eq. 5, summed over the sample
  double mean = 0;     // per item: comparable across sample sizes (embeddings are unit vectors: 0..2)
};

// The average of the probes with gap `delta` (sum and per-item mean); probes = 0 when there were none.
struct DriftAverage {
  double sum = 0, mean = 0;
  size_t probes = 0;
};
DriftAverage average_drift(const std::vector<DriftRecord>& records, uint32_t delta);

class DriftMonitor {
 public:
  // Embeds `sample` (item rows) every `interval` steps (at t0) and again at t0 + dt for each dt in
  // `deltas`, recording D(I, t0 + dt; dt). Probes never overlap: interval must exceed the largest dt.
  DriftMonitor(std::vector<uint32_t> sample, std::vector<uint32_t> deltas, uint32_t interval);

  using Embed = std::function<void(std::span<const uint32_t> rows, float* out)>;
  // Call after every optimiser step, with the number of steps done so far (1 after the first step).
  // Returns the records completed at this step.
  std::vector<DriftRecord> after_step(long step, size_t dim, const Embed& embed);

  const std::vector<uint32_t>& deltas() const { return deltas_; }
  // Forgets an unfinished probe (a checkpoint is taken between probes).
  void reset_probe() { base_.clear(); }

 private:
  std::vector<uint32_t> sample_;
  std::vector<uint32_t> deltas_;
  uint32_t interval_;
  long base_step_ = -1;
  std::vector<float> base_, current_;
};

}  // namespace funnel::train
