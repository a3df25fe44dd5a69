// How long one dense layer of the ranker's MLP takes on this machine, for every input width a and output
// width b of a grid: the latency table AutoFAS reads to predict a pre-ranking architecture's cost. Each cell
// times ranker_dense_layer (funnel/ranker.hpp), the code rank_logits runs for every layer: a -> b over
// `candidates` rows, PReLU after it unless b is 1 (the logit). The same code runs natively and in WASM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "funnel/status.hpp"

namespace funnel {

struct LayerLatencyOptions {
  size_t candidates = 1000;  // rows of one call, as ranking 1,000 candidates
  std::vector<uint32_t> inputs = {8, 16, 32, 64, 128, 256, 512, 1024};
  std::vector<uint32_t> outputs = {1, 32, 64, 128, 256, 512};
  // Timed samples per cell, after a warm-up; the cell is their median. Each repeat is one pass over the whole
  // grid, so that other work on the machine for a while costs a few samples of every cell, not whole cells.
  size_t repeats = 20;
  // A sample runs the layer as many times as it takes to last this long (then divides), so that a coarse
  // clock (a browser's performance.now() is 100 us without cross-origin isolation) still resolves layers
  // of a few microseconds.
  double min_sample_microseconds = 2000;
  // Where it ran, as the table records it; empty: "native <kernels::isa()>", or "wasm" in WebAssembly.
  std::string target;
};

struct LayerLatencyTable {
  std::string target;
  size_t candidates = 0;
  size_t repeats = 0;
  std::vector<uint32_t> inputs, outputs;
  // microseconds[i * outputs.size() + o]: one call of the layer inputs[i] -> outputs[o] over `candidates` rows.
  std::vector<double> microseconds;
  std::string date;  // UTC, ISO 8601, when the measurement finished

  double at(size_t input, size_t output) const { return microseconds[input * outputs.size() + output]; }
};

// Measures every cell. Invalid options (no rows, an empty grid, a width of 0 or above 65536, no repeats)
// are InvalidArgument.
Status measure_layer_latency(const LayerLatencyOptions& options, LayerLatencyTable* out);

// The table as JSON, the format the trainer reads:
// {"target": "native avx2+fma", "candidates": 1000, "activation": "prelu", "inputs": [...], "outputs": [...],
//  "microseconds": [[T(a0,b0), T(a0,b1), ...], [T(a1,b0), ...], ...], "repeats": 20, "date": "..."}
// with rows for inputs and columns for outputs.
std::string layer_latency_json(const LayerLatencyTable& table);

}  // namespace funnel
