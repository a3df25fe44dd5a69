// The dense-layer latency table (funnel/layer_latency.hpp): ranker_dense_layer timed over a grid of widths.
#include "funnel/layer_latency.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "funnel/kernels.hpp"
#include "funnel/ranker.hpp"
#include "funnel/tower.hpp"
#include "json_text.hpp"

namespace funnel {

namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kMaxWidth = 65536;

// Deterministic values in [-scale, scale): the numbers do not matter to the time, but they must be
// ordinary floats (no subnormals, which are slow on some CPUs), and every run should see the same ones.
void fill(std::vector<float>* values, uint64_t seed, float scale) {
  uint64_t state = seed;
  for (float& v : *values) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    v = scale * (static_cast<float>(state >> 40) / static_cast<float>(1 << 24) * 2.0f - 1.0f);
  }
}

double median(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  return n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

// UTC now as ISO 8601, from the seconds since 1970 (Hinnant's days-to-civil): no gmtime, whose Emscripten
// 3.1.6 version calls tzset, which needs malloc exported to JavaScript.
std::string utc_now() {
  const int64_t seconds = static_cast<int64_t>(std::time(nullptr));
  const int64_t days = seconds / 86400, second_of_day = seconds % 86400;
  const int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153, day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2);
  char text[96];
  std::snprintf(text, sizeof text, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", static_cast<long long>(year), static_cast<long long>(month),
                static_cast<long long>(day), static_cast<long long>(second_of_day / 3600), static_cast<long long>(second_of_day / 60 % 60),
                static_cast<long long>(second_of_day % 60));
  return text;
}

void append_list(std::string* out, const std::vector<uint32_t>& values) {
  out->push_back('[');
  for (size_t i = 0; i < values.size(); ++i) out->append((i ? ", " : "") + std::to_string(values[i]));
  out->push_back(']');
}

}  // namespace

Status measure_layer_latency(const LayerLatencyOptions& options, LayerLatencyTable* out) {
  *out = {};
  const auto invalid = [](std::string message) { return Status{StatusCode::kInvalidArgument, std::move(message)}; };
  if (options.candidates == 0 || options.candidates > 1'000'000) return invalid("candidates must be in 1..1000000");
  if (options.inputs.empty() || options.outputs.empty()) return invalid("the input and output widths must not be empty");
  if (options.repeats == 0) return invalid("repeats must be at least 1");
  for (const auto* widths : {&options.inputs, &options.outputs})
    for (uint32_t width : *widths)
      if (width == 0 || width > kMaxWidth) return invalid("layer widths must be in 1.." + std::to_string(kMaxWidth));

  const size_t rows = options.candidates;
  const uint32_t max_in = *std::max_element(options.inputs.begin(), options.inputs.end());
  const uint32_t max_out = *std::max_element(options.outputs.begin(), options.outputs.end());
  std::vector<float> x(rows * max_in), y(rows * max_out), weight(size_t{max_in} * max_out), bias(max_out), alpha(max_out, 0.25f);
  fill(&x, 1, 1.0f);
  fill(&weight, 2, 0.05f);
  fill(&bias, 3, 0.1f);

  out->target = options.target;
  if (out->target.empty()) {
#if defined(__EMSCRIPTEN__)
    out->target = "wasm";
#else
    out->target = std::string("native ") + kernels::isa();
#endif
  }
  out->candidates = rows;
  out->repeats = options.repeats;
  out->inputs = options.inputs;
  out->outputs = options.outputs;
  volatile float sink = 0.0f;  // keeps every call's result alive
  struct Cell {
    DenseLayerView layer;
    size_t calls = 1;  // per sample
    std::vector<double> samples;
  };
  std::vector<Cell> cells;
  for (uint32_t in : options.inputs)
    for (uint32_t out_dim : options.outputs) {
      // As rank_logits runs a layer: PReLU on hidden layers, none on the one-output logit layer.
      cells.push_back({DenseLayerView{weight.data(), bias.data(), in, out_dim, out_dim > 1 ? Activation::kPRelu : Activation::kNone,
                                      out_dim > 1 ? alpha.data() : nullptr},
                       1,
                       {}});
    }
  const auto time_calls = [&](const DenseLayerView& layer, size_t calls) {
    const auto start = Clock::now();
    for (size_t c = 0; c < calls; ++c) ranker_dense_layer(layer, x.data(), rows, y.data());
    sink = sink + y[0];
    return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  };
  // Warm-up and calibration, cell by cell: how many calls make one sample last min_sample_microseconds.
  for (Cell& cell : cells) {
    for (double elapsed = time_calls(cell.layer, cell.calls); elapsed < options.min_sample_microseconds && cell.calls < (size_t{1} << 24);
         elapsed = time_calls(cell.layer, cell.calls)) {
      const double wanted = elapsed > 0 ? static_cast<double>(cell.calls) * options.min_sample_microseconds * 1.2 / elapsed
                                        : static_cast<double>(cell.calls) * 10;
      cell.calls = std::max(cell.calls * 2, static_cast<size_t>(std::min(wanted, static_cast<double>(size_t{1} << 24))));
    }
  }
  // Each repeat is one pass over the whole grid, so that a burst of other work on the machine costs a few
  // samples of every cell, which the median drops, rather than every sample of the cells it overlapped.
  for (size_t r = 0; r < options.repeats; ++r)
    for (Cell& cell : cells) cell.samples.push_back(time_calls(cell.layer, cell.calls) / static_cast<double>(cell.calls));
  for (Cell& cell : cells) out->microseconds.push_back(median(std::move(cell.samples)));
  out->date = utc_now();
  return Status::ok();
}

std::string layer_latency_json(const LayerLatencyTable& table) {
  std::string out = "{\"target\": ";
  append_json_string(&out, table.target);
  out += ", \"candidates\": " + std::to_string(table.candidates) + ", \"activation\": \"prelu\", \"inputs\": ";
  append_list(&out, table.inputs);
  out += ", \"outputs\": ";
  append_list(&out, table.outputs);
  out += ",\n \"microseconds\": [";
  char number[32];
  for (size_t i = 0; i < table.inputs.size(); ++i) {
    out += i ? ",\n  [" : "\n  [";
    for (size_t o = 0; o < table.outputs.size(); ++o) {
      std::snprintf(number, sizeof number, "%s%.3f", o ? ", " : "", table.at(i, o));
      out += number;
    }
    out += "]";
  }
  out += "],\n \"repeats\": " + std::to_string(table.repeats) + ", \"date\": ";
  append_json_string(&out, table.date);
  out += "}\n";
  return out;
}

}  // namespace funnel
