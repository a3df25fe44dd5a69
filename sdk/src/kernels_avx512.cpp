// Batches of queries against the catalogue with AVX-512 (built with -mavx512f -mavx2 -mfma -mf16c; only
// called after CPUID and XGETBV say the CPU and the OS have AVX-512). The same register-blocked product as
// the AVX2 batch kernel (kernels_impl.inl), twice as wide and with twice the registers: tiles of 12 rows x
// 32 queries, 24 accumulators of 16 lanes. f16 and int8 rows are decoded to floats a tile at a time (int8
// batches go to kernels_avx512vnni.cpp where the CPU has AVX512-VNNI). A pair's score is its lane's sum over
// the dimensions in order; search_batch re-scores its shortlists with scan().
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "batch_packing.hpp"
#include "funnel/kernels.hpp"

namespace funnel::kernels::avx512 {
namespace {

constexpr size_t kTileRows = 12;     // 24 accumulators, 2 query registers and a broadcast of AVX-512's 32
constexpr size_t kTileQueries = 32;  // two registers of 16 lanes

template <size_t kR>
inline void tile_scores(const float* rows, size_t dim, const float* packed, __m512 (*acc)[2]) {
  __m512 low[kR], high[kR];
  for (size_t r = 0; r < kR; ++r) low[r] = high[r] = _mm512_setzero_ps();
  for (size_t k = 0; k < dim; ++k) {
    const __m512 q0 = _mm512_loadu_ps(packed + k * kTileQueries), q1 = _mm512_loadu_ps(packed + k * kTileQueries + 16);
    for (size_t r = 0; r < kR; ++r) {
      const __m512 x = _mm512_set1_ps(rows[r * dim + k]);
      low[r] = _mm512_fmadd_ps(x, q0, low[r]);
      high[r] = _mm512_fmadd_ps(x, q1, high[r]);
    }
  }
  for (size_t r = 0; r < kR; ++r) {
    acc[r][0] = low[r];
    acc[r][1] = high[r];
  }
}

// n * dim elements of f16 or int8 rows as floats.
void decode(const uint16_t* source, size_t count, float* out) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(source + i))));
  for (; i < count; ++i) out[i] = _cvtsh_ss(source[i]);
}
void decode(const int8_t* source, size_t count, float* out) {
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<float>(source[i]);
}

template <class T>
void scan_rows_batch(const T* data, const float* scales, size_t dim, size_t begin, size_t end, const std::vector<float>& packed,
                     size_t count, float* out) {
  const size_t blocks = (count + kTileQueries - 1) / kTileQueries;
  std::vector<float> decoded(std::is_same_v<T, float> ? 0 : kTileRows * dim);
  for (size_t r0 = begin; r0 < end; r0 += kTileRows) {
    const size_t n = end - r0 < kTileRows ? end - r0 : kTileRows;
    const char* bytes = reinterpret_cast<const char*>(data + r0 * dim);
    for (size_t b = 0; b < n * dim * sizeof(T); b += 64) __builtin_prefetch(bytes + 4096 + b);
    const float* tile;
    if constexpr (std::is_same_v<T, float>) {
      tile = data + r0 * dim;
    } else {
      decode(data + r0 * dim, n * dim, decoded.data());
      tile = decoded.data();
    }
    for (size_t b = 0; b < blocks; ++b) {
      __m512 acc[kTileRows][2];
      const float* block = packed.data() + b * dim * kTileQueries;
      if (n == kTileRows) tile_scores<kTileRows>(tile, dim, block, acc);
      else
        for (size_t r = 0; r < n; ++r) tile_scores<1>(tile + r * dim, dim, block, acc + r);
      const size_t q0 = b * kTileQueries, width = count - q0 < kTileQueries ? count - q0 : kTileQueries;
      const __mmask16 low = store_mask(width), high = store_mask(width > 16 ? width - 16 : 0);
      for (size_t r = 0; r < n; ++r) {
        const __m512 scale = _mm512_set1_ps(scales ? scales[r0 + r] : 1.0f);
        float* row_out = out + (r0 + r - begin) * count + q0;
        _mm512_mask_storeu_ps(row_out, low, _mm512_mul_ps(acc[r][0], scale));
        _mm512_mask_storeu_ps(row_out + 16, high, _mm512_mul_ps(acc[r][1], scale));
      }
    }
  }
}

}  // namespace

void prepare_batch(const EmbeddingRows& m, const float* queries, size_t count, BatchQueries* out) {
  out->queries = queries;
  out->count = count;
  out->dim = m.dim;
  pack_queries_f32(queries, count, m.dim, kTileQueries, &out->packed);
  out->bytes.clear();
  out->steps.clear();
}

void scan_batch(const EmbeddingRows& m, size_t begin, size_t end, const BatchQueries& batch, float* out) {
  switch (m.precision) {
    case Precision::kF16:
      return scan_rows_batch(static_cast<const uint16_t*>(m.data), nullptr, m.dim, begin, end, batch.packed, batch.count, out);
    case Precision::kI8:
      return scan_rows_batch(static_cast<const int8_t*>(m.data), m.scales, m.dim, begin, end, batch.packed, batch.count, out);
    default: return scan_rows_batch(static_cast<const float*>(m.data), nullptr, m.dim, begin, end, batch.packed, batch.count, out);
  }
}

}  // namespace funnel::kernels::avx512
