// Reduced-precision item embeddings: IEEE binary16 and int8 with one scale per row. The exporter and
// the SDK's catalogue updates quantise with these, and the kernels decode the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "funnel/kernels.hpp"

namespace funnel {

// "f32", "f16", "int8".
const char* precision_name(Precision precision);
// false when `name` is none of the above.
bool parse_precision(std::string_view name, Precision* out);

// IEEE binary16, rounded to nearest even; overflow gives +-infinity.
uint16_t float_to_half(float x);
float half_to_float(uint16_t h);
void floats_to_halves(const float* x, size_t n, uint16_t* out);

// Symmetric per-row int8: scale = max |x| / 127 (1 for a zero row), q = round(x / scale), so every value
// is within scale / 2 of its decoding scale * q.
void quantize_rows_i8(const float* rows, size_t count, size_t dim, int8_t* q, float* scales);

}  // namespace funnel
