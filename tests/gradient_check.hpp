// Helpers for finite-difference gradient checks (include after catch.hpp).
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "train/core/rng.hpp"
#include "support.hpp"

namespace funnel::test {

inline std::vector<float> random_values(size_t n, train::Rng& rng, double scale = 1.0) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(scale * rng.normal());
  return v;
}

// Compares analytic and numeric gradients with a tolerance that float32 finite differences can meet.
inline void expect_close(double analytic, double numeric, const std::string& what) {
  INFO(what << ": analytic " << analytic << ", numeric " << numeric);
  CHECK(std::fabs(analytic - numeric) <= 2e-3 + 2e-2 * std::fabs(numeric));
}

// Checks one entry's analytic gradient against central differences, unless the step crosses a kink (ReLU,
// PReLU at 0): there the difference quotient measures nothing and changes with the step, so the entry is
// skipped. Returns whether it was checked; callers require skips to stay rare.
inline bool check_away_from_kinks(float& value, double analytic, const std::function<double()>& loss, const std::string& what) {
  const double numeric = numeric_gradient(value, loss, 2e-3f);
  const double half_step = numeric_gradient(value, loss, 1e-3f);
  if (std::fabs(numeric - half_step) > 1e-3 + 0.02 * std::fabs(numeric)) return false;
  expect_close(analytic, numeric, what);
  return true;
}

}  // namespace funnel::test
