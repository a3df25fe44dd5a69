// Test data both SDK kernel tests use: normal floats, and catalogue rows in every precision made from the same
// floats, with the f32 value each stored element decodes to.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "funnel/precision.hpp"
#include "funnel/search.hpp"

namespace funnel::test {

inline std::vector<float> normal_floats(size_t n, uint32_t seed) {
  std::mt19937 engine(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (float& x : v) x = normal(engine);
  return v;
}

struct Catalogue {
  size_t rows, dim;
  std::vector<float> f32;
  std::vector<uint16_t> f16;
  std::vector<int8_t> i8;
  std::vector<float> scales;

  Catalogue(size_t rows_, size_t dim_, uint32_t seed) : rows(rows_), dim(dim_), f32(normal_floats(rows_ * dim_, seed)) {
    f16.resize(f32.size());
    floats_to_halves(f32.data(), f32.size(), f16.data());
    i8.resize(f32.size());
    scales.resize(rows);
    quantize_rows_i8(f32.data(), rows, dim, i8.data(), scales.data());
  }
  EmbeddingRows view(Precision p) const {
    if (p == Precision::kF16) return {p, f16.data(), nullptr, rows, dim};
    if (p == Precision::kI8) return {p, i8.data(), scales.data(), rows, dim};
    return {p, f32.data(), nullptr, rows, dim};
  }
  double decoded(Precision p, size_t r, size_t i) const {
    if (p == Precision::kF16) return half_to_float(f16[r * dim + i]);
    if (p == Precision::kI8) return double{scales[r]} * i8[r * dim + i];
    return f32[r * dim + i];
  }
};

constexpr Precision kPrecisions[] = {Precision::kF32, Precision::kF16, Precision::kI8};

}  // namespace funnel::test
