// Helpers for finite-difference gradient checks (include after catch.hpp).
#pragma once

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "rng.hpp"

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

}  // namespace funnel::test
