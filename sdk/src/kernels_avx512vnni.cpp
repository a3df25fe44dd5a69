// int8 rows against a batch with AVX512-VNNI (built with -mavx512f -mavx512vnni; only called after CPUID and
// XGETBV say the CPU and the OS have both). One vpdpbusd multiplies 4 unsigned bytes by 4 signed ones in
// each of 16 int32 lanes and adds the sums: 64 products per instruction where an AVX-512 FMA makes 16, and a
// batch is compute-bound (each row serves many queries).
//
// The queries are rounded to 8-bit integers (pack_queries_u8: q in [-127, 127], step = max|query| / 127,
// stored as u = q + 128); a row's sum_i u_i x_i is corrected by 128 sum_i x_i. The score,
// scale[r] * ((float)sum_i q_i x_i * step), is within step / 2 * scale[r] * sum_i |x_i| of the decoded row's
// product: coarser than scan()'s 16-bit rounding, which is why search_batch re-scores every shortlist with
// scan(). Rows whose length is not a multiple of 4 (or over 4,096), and queries with a NaN or an
// infinity, go to the AVX-512 float kernel.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "batch_packing.hpp"
#include "funnel/kernels.hpp"

namespace funnel::kernels {
namespace avx512 {
void prepare_batch(const EmbeddingRows& m, const float* queries, size_t count, BatchQueries* out);
void scan_batch(const EmbeddingRows& m, size_t begin, size_t end, const BatchQueries& batch, float* out);
}

namespace avx512vnni {
namespace {

constexpr size_t kTileRows = 12;     // 24 accumulators, 2 query registers and a broadcast of AVX-512's 32
constexpr size_t kTileQueries = 32;  // two registers of 16 int32 lanes
constexpr size_t kMaxDim = 4096;     // |sums| <= dim * 255 * 128, and 128 * sum_i x_i, stay far below 2^31

// acc[r][h] lane j = sum over the dimensions of u(query 16 h + j) * row r, for kR rows.
template <size_t kR>
inline void tile_sums(const int8_t* rows, size_t dim, const uint32_t* packed, __m512i (*acc)[2]) {
  __m512i low[kR], high[kR];
  for (size_t r = 0; r < kR; ++r) low[r] = high[r] = _mm512_setzero_si512();
  for (size_t k = 0; k < dim / 4; ++k) {
    const __m512i q0 = _mm512_loadu_si512(packed + k * kTileQueries), q1 = _mm512_loadu_si512(packed + k * kTileQueries + 16);
    for (size_t r = 0; r < kR; ++r) {
      int32_t four;
      std::memcpy(&four, rows + r * dim + 4 * k, 4);
      const __m512i x = _mm512_set1_epi32(four);
      low[r] = _mm512_dpbusd_epi32(low[r], q0, x);
      high[r] = _mm512_dpbusd_epi32(high[r], q1, x);
    }
  }
  for (size_t r = 0; r < kR; ++r) {
    acc[r][0] = low[r];
    acc[r][1] = high[r];
  }
}

}  // namespace

// int8 rows of a length the byte tiles take: the queries rounded to bytes, and also packed as floats for
// the float kernel where that fails (a NaN or an infinity); any other rows, the AVX-512 float kernel's layout.
void prepare_batch(const EmbeddingRows& m, const float* queries, size_t count, BatchQueries* out) {
  avx512::prepare_batch(m, queries, count, out);
  const size_t dim = m.dim;
  if (m.precision != Precision::kI8 || dim % 4 != 0 || dim == 0 || dim > kMaxDim ||
      !pack_queries_u8(queries, count, dim, kTileQueries, &out->bytes, &out->steps)) {
    out->bytes.clear();
    out->steps.clear();
  }
}

void scan_batch(const EmbeddingRows& m, size_t begin, size_t end, const BatchQueries& batch, float* out) {
  if (m.precision != Precision::kI8 || batch.bytes.empty()) return avx512::scan_batch(m, begin, end, batch, out);
  const size_t dim = m.dim, count = batch.count;
  const std::vector<uint32_t>& packed = batch.bytes;
  const std::vector<float>& steps = batch.steps;
  const int8_t* data = static_cast<const int8_t*>(m.data);
  const size_t blocks = (count + kTileQueries - 1) / kTileQueries, groups = dim / 4;
  for (size_t r0 = begin; r0 < end; r0 += kTileRows) {
    const size_t n = end - r0 < kTileRows ? end - r0 : kTileRows;
    const int8_t* tile = data + r0 * dim;
    for (size_t b = 0; b < n * dim; b += 64) __builtin_prefetch(reinterpret_cast<const char*>(tile) + 4096 + b);
    int32_t offsets[kTileRows];  // 128 * sum_i x_i: what the +128 of the stored queries added
    for (size_t r = 0; r < n; ++r) {
      int32_t sum = 0;
      for (size_t i = 0; i < dim; ++i) sum += tile[r * dim + i];
      offsets[r] = 128 * sum;
    }
    for (size_t b = 0; b < blocks; ++b) {
      __m512i acc[kTileRows][2];
      const uint32_t* block = packed.data() + b * groups * kTileQueries;
      if (n == kTileRows) tile_sums<kTileRows>(tile, dim, block, acc);
      else
        for (size_t r = 0; r < n; ++r) tile_sums<1>(tile + r * dim, dim, block, acc + r);
      const size_t q0 = b * kTileQueries, width = count - q0 < kTileQueries ? count - q0 : kTileQueries;
      const __mmask16 masks[2] = {store_mask(width), store_mask(width > 16 ? width - 16 : 0)};
      for (size_t r = 0; r < n; ++r) {
        const __m512i offset = _mm512_set1_epi32(offsets[r]);
        const __m512 scale = _mm512_set1_ps(m.scales[r0 + r]);
        float* row_out = out + (r0 + r - begin) * count + q0;
        for (size_t h = 0; h < 2; ++h) {
          // maskz with every lane: GCC 12 warns (maybe-uninitialized) on the unmasked conversion.
          const __m512 sums = _mm512_maskz_cvtepi32_ps(0xffff, _mm512_sub_epi32(acc[r][h], offset));
          _mm512_mask_storeu_ps(row_out + 16 * h, masks[h], _mm512_mul_ps(scale, _mm512_mul_ps(sums, _mm512_loadu_ps(steps.data() + q0 + 16 * h))));
        }
      }
    }
  }
}

}  // namespace avx512vnni
}  // namespace funnel::kernels
