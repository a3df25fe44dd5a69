// Queries laid out for the batched scan kernels (kernels::scan_batch), whatever their instruction set: the
// queries of a block side by side along the vector lanes, dimension after dimension, so that one load
// gives one dimension of `width` queries. Scalar code, the same in every kernel build (and the AVX-512
// kernels' store mask).
#pragma once

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace funnel::kernels {

// packed[(b * dim + k) * width + j] = queries[b * width + j][k], zero past `count`; blocks of `width`.
inline void pack_queries_f32(const float* queries, size_t count, size_t dim, size_t width, std::vector<float>* packed) {
  const size_t blocks = (count + width - 1) / width;
  packed->assign(blocks * dim * width, 0.0f);
  for (size_t q = 0; q < count; ++q)
    for (size_t k = 0; k < dim; ++k) (*packed)[((q / width) * dim + k) * width + q % width] = queries[q * dim + k];
}

// The queries rounded to 8-bit integers q = round(query / step) in [-127, 127], step = max|query| / 127
// (steps[q]; 0 for a zero query and past `count`), stored as bytes u = q + 128 for unsigned-by-signed byte
// products, four dimensions per 32-bit lane: packed[(b * dim / 4 + k) * width + j] holds query
// b * width + j's bytes for dimensions 4k .. 4k + 3 (128, i.e. q = 0, past `count`). dim must be a multiple
// of 4. false when a query holds a NaN or an infinity.
inline bool pack_queries_u8(const float* queries, size_t count, size_t dim, size_t width, std::vector<uint32_t>* packed,
                            std::vector<float>* steps) {
  const size_t blocks = (count + width - 1) / width, groups = dim / 4;
  packed->assign(blocks * groups * width, 0x80808080u);
  steps->assign(blocks * width, 0.0f);
  for (size_t q = 0; q < count; ++q) {
    const float* query = queries + q * dim;
    float largest = 0;
    for (size_t i = 0; i < dim; ++i) {
      if (!std::isfinite(query[i])) return false;
      largest = std::fabs(query[i]) > largest ? std::fabs(query[i]) : largest;
    }
    if (largest == 0) continue;
    const float inverse = 127.0f / largest;
    (*steps)[q] = largest / 127.0f;
    for (size_t k = 0; k < groups; ++k) {
      uint8_t bytes[4];
      for (size_t t = 0; t < 4; ++t) {
        const float v = std::nearbyint(query[4 * k + t] * inverse);
        bytes[t] = static_cast<uint8_t>(static_cast<int>(v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v)) + 128);
      }
      std::memcpy(&(*packed)[((q / width) * groups + k) * width + q % width], bytes, 4);
    }
  }
  return true;
}

#if defined(__AVX512F__)
// The first min(width, 16) lanes of a 16-lane store: the AVX-512 batch kernels write a tile's scores straight
// to the caller's rows with masked stores (a memcpy of 32 floats per row cost as much as the arithmetic).
inline __mmask16 store_mask(size_t width) { return width >= 16 ? __mmask16(0xffff) : __mmask16((1u << width) - 1); }
#endif

}  // namespace funnel::kernels
