// AutoFAS's latency terms (Li et al., KDD 2021, eq. 3-4): the table T[a x b] of dense-layer latencies
// measured by the SDK on the deployment target, and the supernet's expected latency E[lat'] over it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace funnel::train {

// T[a x b]: microseconds of one dense layer from a to b units (PReLU after it when b > 1) over `candidates`
// rows, as `funnel bench-layers` (or the WASM module's benchLayers) measured it on the deployment target.
class LatencyTable {
 public:
  static LatencyTable load(const std::string& path);
  static LatencyTable from_json(const nlohmann::json& object, const std::string& where);

  // Linear interpolation between measured widths (and linear extrapolation past the ends, where a layer's
  // cost keeps growing with its width); a in units of input width, b of output width.
  double at(double a, double b) const;
  const std::string& target() const { return target_; }
  uint32_t candidates() const { return candidates_; }

 private:
  std::string target_;
  uint32_t candidates_ = 0;
  std::vector<double> inputs_, outputs_;
  std::vector<std::vector<double>> microseconds_;  // [inputs][outputs]
};

// A Mixop's candidate operators: 0 is the identity (the layer disappears), w > 0 a dense layer of w units.
using Operators = std::vector<uint32_t>;

// E[lat'] of the supernet (AutoFAS's recursive expected latency): the input width is `input_width`; a
// Mixop chooses operator j with probability p[l][j]; a dense operator costs T[a x w] for the width a it
// receives and passes w on, the identity costs nothing and passes a on; the output layer costs T[a x 1].
// The width a Mixop receives is itself random, so the expectation is carried as a distribution over
// widths. `gradient`, when given, receives d E[lat'] / d p[l][j].
double expected_architecture_latency(const std::vector<std::vector<double>>& p, const Operators& operators, double input_width,
                                     const LatencyTable& table, std::vector<std::vector<double>>* gradient = nullptr);

}  // namespace funnel::train
