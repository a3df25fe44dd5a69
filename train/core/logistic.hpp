// The logistic function and the binary cross-entropy from a logit, computed without overflow: shared by
// the CTR losses, GHM-C and LogLoss.
#pragma once

#include <algorithm>
#include <cmath>

namespace funnel::train {

// sigmoid(x) without overflow: exp is only taken of -|x|, and 1 - p is best obtained as sigmoid(-x), not
// by a subtraction that would round a confident prediction's remainder to 0.
inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// -y log p - (1 - y) log(1 - p) = max(x, 0) - x y + log(1 + e^{-|x|}), finite for every finite logit.
inline double cross_entropy(double x, double y) { return std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::fabs(x))); }

}  // namespace funnel::train
