// The dense-layer latency table (funnel/layer_latency.hpp) in WebAssembly: the SDK's own measurement, the
// code that runs natively in `funnel bench-layers`, for wasm/tools/bench_layers.mjs (Node) and
// wasm/tools/bench_layers_chromium.mjs (Chromium). A module of its own: the package's bundle does not carry it.
#include <emscripten/emscripten.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "funnel/layer_latency.hpp"

namespace {

// "8,16,32" -> {8, 16, 32}; false on anything else.
bool parse_widths(const char* text, std::vector<uint32_t>* out) {
  out->clear();
  const std::string s = text ? text : "";
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = std::min(s.find(',', start), s.size());
    const std::string part = s.substr(start, comma - start);
    char* end = nullptr;
    const unsigned long value = std::strtoul(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || value > 65536) return false;
    out->push_back(static_cast<uint32_t>(value));
    start = comma + 1;
  }
  return !out->empty();
}

}  // namespace

extern "C" {

// The table as JSON (layer_latency_json), or {"error": "..."}. Empty lists take the defaults; candidates or
// repeats 0 too. The result stays valid until the next call.
EMSCRIPTEN_KEEPALIVE const char* funnel_bench_layers(const char* target, int candidates, const char* inputs, const char* outputs,
                                                     int repeats) {
  static std::string result;
  funnel::LayerLatencyOptions options;
  if (target && *target) options.target = target;
  if (candidates > 0) options.candidates = static_cast<size_t>(candidates);
  if (repeats > 0) options.repeats = static_cast<size_t>(repeats);
  if ((inputs && *inputs && !parse_widths(inputs, &options.inputs)) || (outputs && *outputs && !parse_widths(outputs, &options.outputs))) {
    result = "{\"error\": \"widths must be comma-separated integers\"}";
    return result.c_str();
  }
  funnel::LayerLatencyTable table;
  if (funnel::Status s = funnel::measure_layer_latency(options, &table); !s) {
    result = "{\"error\": \"" + s.message() + "\"}";
    return result.c_str();
  }
  result = funnel::layer_latency_json(table);
  return result.c_str();
}

}  // extern "C"
