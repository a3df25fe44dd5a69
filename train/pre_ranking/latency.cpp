#include "train/pre_ranking/latency.hpp"

#include <algorithm>
#include <cmath>

#include "train/core/config_io.hpp"
#include "train/core/errors.hpp"

namespace funnel::train {

namespace {

// Position of x among increasing knots: the segment [i, i + 1] to interpolate on and the weight of i + 1
// (outside the knots, the end segment, extrapolated).
std::pair<size_t, double> segment(const std::vector<double>& knots, double x) {
  if (knots.size() == 1) return {0, 0.0};
  size_t i = 0;
  while (i + 2 < knots.size() && x > knots[i + 1]) ++i;
  return {i, (x - knots[i]) / (knots[i + 1] - knots[i])};
}

}  // namespace

LatencyTable LatencyTable::load(const std::string& path) { return from_json(config_io::parse_file(path), path); }

LatencyTable LatencyTable::from_json(const nlohmann::json& object, const std::string& where) {
  LatencyTable table;
  const auto fail = [&where](const std::string& message) { throw ConfigError(where + ": latency table: " + message); };
  try {
    table.target_ = object.value("target", std::string("unknown"));
    table.candidates_ = object.at("candidates").get<uint32_t>();
    table.inputs_ = object.at("inputs").get<std::vector<double>>();
    table.outputs_ = object.at("outputs").get<std::vector<double>>();
    table.microseconds_ = object.at("microseconds").get<std::vector<std::vector<double>>>();
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("expected candidates, inputs, outputs and microseconds (") + e.what() + ")");
  }
  if (table.candidates_ == 0) fail("candidates must be positive");
  for (const auto* widths : {&table.inputs_, &table.outputs_}) {
    if (widths->empty()) fail("inputs and outputs must list widths");
    for (size_t i = 0; i < widths->size(); ++i)
      if (!((*widths)[i] >= 1) || (i > 0 && !((*widths)[i] > (*widths)[i - 1]))) fail("widths must be increasing and at least 1");
  }
  if (table.microseconds_.size() != table.inputs_.size()) fail("microseconds must have one row per input width");
  for (const auto& row : table.microseconds_) {
    if (row.size() != table.outputs_.size()) fail("every row of microseconds must have one value per output width");
    for (double t : row)
      if (!std::isfinite(t) || t < 0) fail("microseconds must be finite and not negative");
  }
  return table;
}

double LatencyTable::at(double a, double b) const {
  const auto [i, u] = segment(inputs_, a);
  const auto [j, v] = segment(outputs_, b);
  const auto value = [this](size_t r, size_t c) { return microseconds_[std::min(r, inputs_.size() - 1)][std::min(c, outputs_.size() - 1)]; };
  const double low = value(i, j) + v * (value(i, j + 1) - value(i, j));
  const double high = value(i + 1, j) + v * (value(i + 1, j + 1) - value(i + 1, j));
  return std::max(0.0, low + u * (high - low));
}

double expected_architecture_latency(const std::vector<std::vector<double>>& p, const Operators& operators, double input_width,
                                     const LatencyTable& table, std::vector<std::vector<double>>* gradient) {
  // The widths a Mixop can receive: the input's, and every dense operator's.
  std::vector<double> widths = {input_width};
  std::vector<size_t> slot(operators.size(), 0);
  for (size_t j = 0; j < operators.size(); ++j) {
    if (operators[j] == 0) continue;
    widths.push_back(operators[j]);
    slot[j] = widths.size() - 1;
  }
  const size_t layers = p.size(), s = widths.size();
  std::vector<std::vector<double>> q(layers + 1, std::vector<double>(s, 0.0));  // q[l]: the width Mixop l + 1 receives
  std::vector<std::vector<double>> cost(layers, std::vector<double>(operators.size(), 0.0));
  q[0][0] = 1.0;
  double total = 0.0;
  for (size_t l = 0; l < layers; ++l) {
    for (size_t j = 0; j < operators.size(); ++j) {
      if (operators[j] == 0) {
        for (size_t k = 0; k < s; ++k) q[l + 1][k] += p[l][j] * q[l][k];
        continue;
      }
      for (size_t k = 0; k < s; ++k) cost[l][j] += q[l][k] * table.at(widths[k], operators[j]);
      total += p[l][j] * cost[l][j];
      q[l + 1][slot[j]] += p[l][j];
    }
  }
  for (size_t k = 0; k < s; ++k) total += q[layers][k] * table.at(widths[k], 1);
  if (!gradient) return total;

  // Backwards: g[k] = d total / d q[l][k], starting from the output layer's cost.
  gradient->assign(layers, std::vector<double>(operators.size(), 0.0));
  std::vector<double> g(s), before(s);
  for (size_t k = 0; k < s; ++k) g[k] = table.at(widths[k], 1);
  for (size_t l = layers; l-- > 0;) {
    std::fill(before.begin(), before.end(), 0.0);
    for (size_t j = 0; j < operators.size(); ++j) {
      if (operators[j] == 0) {
        double passed = 0.0;
        for (size_t k = 0; k < s; ++k) {
          passed += g[k] * q[l][k];
          before[k] += p[l][j] * g[k];
        }
        (*gradient)[l][j] = passed;
        continue;
      }
      (*gradient)[l][j] = cost[l][j] + g[slot[j]];
      for (size_t k = 0; k < s; ++k) before[k] += p[l][j] * table.at(widths[k], operators[j]);
    }
    g.swap(before);
  }
  return total;
}

}  // namespace funnel::train
