#include "funnel/precision.hpp"

#include <cmath>
#include <cstring>

namespace funnel {

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::kF16: return "f16";
    case Precision::kI8: return "int8";
    default: return "f32";
  }
}

bool parse_precision(std::string_view name, Precision* out) {
  if (name == "f32") *out = Precision::kF32;
  else if (name == "f16") *out = Precision::kF16;
  else if (name == "int8") *out = Precision::kI8;
  else return false;
  return true;
}

uint16_t float_to_half(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN stays NaN
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504: infinity
  if (magnitude < 0x38800000u) {
    // A half subnormal (or zero): the value in units of 2^-24, rounded to nearest even by the FPU.
    float m;
    std::memcpy(&m, &magnitude, sizeof m);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(m * 0x1p24f)));
  }
  // Normal: rebias the exponent, then round the 13 dropped mantissa bits to nearest even (a carry into
  // the exponent is the correct result).
  const uint32_t rebased = magnitude - ((127u - 15u) << 23);
  const uint32_t round = 0xfffu + ((rebased >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rebased + round) >> 13));
}

float half_to_float(uint16_t h) {
  // The kernels decode with the same steps (kernels_impl.inl), so a scalar and a vector decode agree.
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t rest = h & 0x7fffu;
  uint32_t shifted = rest << 13;
  float value;
  std::memcpy(&value, &shifted, sizeof value);
  value *= 0x1p112f;  // exponent 15 -> 127; halves' subnormals come out exact
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if (rest >= 0x7c00u) bits = 0x7f800000u | shifted;  // infinity and NaN
  bits |= sign;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

void floats_to_halves(const float* x, size_t n, uint16_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = float_to_half(x[i]);
}

void quantize_rows_i8(const float* rows, size_t count, size_t dim, int8_t* q, float* scales) {
  for (size_t r = 0; r < count; ++r) {
    const float* row = rows + r * dim;
    float largest = 0;
    for (size_t i = 0; i < dim; ++i) largest = std::fmax(largest, std::fabs(row[i]));
    const float scale = largest > 0 ? largest / 127.0f : 1.0f;
    scales[r] = scale;
    for (size_t i = 0; i < dim; ++i) {
      const float v = std::nearbyint(row[i] / scale);
      q[r * dim + i] = static_cast<int8_t>(std::fmax(-127.0f, std::fmin(127.0f, v)));
    }
  }
}

}  // namespace funnel
