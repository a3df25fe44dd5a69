// The SDK's one test of the numbers it takes in and answers with: finite, neither NaN nor an infinity.
// The trainer refuses the same values in its data; the SDK refuses them in requests (a feature's number,
// a search query) and never answers success with a score or an embedding that is not finite.
#pragma once

#include <cmath>
#include <cstddef>

#include "funnel/status.hpp"

namespace funnel {

// The position of the first value of values[0, n) that is not finite, or n when every one is.
inline size_t first_non_finite(const float* values, size_t n) {
  size_t i = 0;
  while (i < n && std::isfinite(values[i])) ++i;
  return i;
}

// "<what> is nan, not a finite number<why>", where <what> is printf's `format` of the arguments that follow
// (sdk/src/features.cpp). One function formats every such message: inline string concatenations at each
// call site cost the WASM package about a kilobyte.
Status not_finite(StatusCode code, double value, const char* why, const char* format, ...) __attribute__((format(printf, 4, 5)));

}  // namespace funnel
