// Kernel bodies, compiled once per instruction set (see kernels_generic.cpp and kernels_avx2.cpp).
// Eight independent accumulators in a fixed order: the compiler turns them into SIMD registers (one
// AVX2 register, two SSE, NEON or simd128 ones) without -ffast-math, and every build sums in the same
// order, so native, ARM and WASM agree to rounding.

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "batch_packing.hpp"
#include "funnel/kernels.hpp"
#if defined(__AVX2__) || defined(__F16C__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#elif defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

namespace funnel::kernels::FUNNEL_KERNEL_NS {

namespace {

// Vectors of 8 floats (GCC/Clang vector extensions): one AVX register, two SSE, NEON or simd128 registers.
typedef float Float8 __attribute__((vector_size(32)));
typedef uint32_t Uint8v __attribute__((vector_size(32)));
typedef int8_t Byte8 __attribute__((vector_size(8)));
typedef uint16_t Half8 __attribute__((vector_size(16)));

// Through a pointer rather than a return value: a 32-byte vector returned by value warns (-Wpsabi)
// in the builds without AVX.
inline void load8(Float8* v, const float* p) { __builtin_memcpy(v, p, sizeof *v); }

// Accumulators are vectors of the width the target computes in one register: 8 floats with AVX, 4 with
// SSE, NEON and simd128. GCC keeps a vector wider than the hardware's in memory, so on NEON a Float8
// accumulator was stored and reloaded at every step. Eight lanes are kParts such registers, lanes 0-3 in
// the first; each lane's sums run in the same order whatever the width.
#if defined(__AVX__)
typedef float FloatReg __attribute__((vector_size(32)));
#else
typedef float FloatReg __attribute__((vector_size(16)));
#endif
constexpr size_t kParts = sizeof(Float8) / sizeof(FloatReg);

// Row elements of each precision as floats, 8 at a time and one at a time. A half decodes by moving its
// exponent and mantissa into a float's and scaling by 2^112 (exact for subnormals too), infinities and
// NaNs patched in: the steps of funnel::half_to_float, so the scalar and vector decodes agree.
inline void decode8(Float8* v, const float* p) { load8(v, p); }
// Widening int8 to float: GCC 12 turns __builtin_convertvector on bytes into scalar code, and so does
// Emscripten's Clang 14 for simd128 (a lane extract and a convert per byte), so x86, ARM and WASM say
// what they mean with intrinsics; the builtin for other Clang targets, a plain loop elsewhere.
inline void decode8(Float8* v, const int8_t* p) {
#if defined(__AVX2__)
  *v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#elif defined(__ARM_NEON)
  const int16x8_t wide = vmovl_s8(vld1_s8(p));
  const float32x4_t parts[2] = {vcvtq_f32_s32(vmovl_s16(vget_low_s16(wide))), vcvtq_f32_s32(vmovl_s16(vget_high_s16(wide)))};
  __builtin_memcpy(v, parts, sizeof parts);
#elif defined(__wasm_simd128__)
  const v128_t wide = wasm_i16x8_extend_low_i8x16(wasm_v128_load64_zero(p));
  v128_t low = wasm_i32x4_extend_low_i16x8(wide), high = wasm_i32x4_extend_high_i16x8(wide);
  // Empty asm: else Clang folds the widening and the conversion into one of 16-bit lanes, which it
  // lowers lane by lane.
  __asm__("" : "+r"(low));
  __asm__("" : "+r"(high));
  const v128_t parts[2] = {wasm_f32x4_convert_i32x4(low), wasm_f32x4_convert_i32x4(high)};
  __builtin_memcpy(v, parts, sizeof parts);
#elif defined(__clang__)
  Byte8 bytes;
  __builtin_memcpy(&bytes, p, sizeof bytes);
  *v = __builtin_convertvector(bytes, Float8);
#else
  float lanes[8];
  for (size_t j = 0; j < 8; ++j) lanes[j] = p[j];
  __builtin_memcpy(v, lanes, sizeof lanes);
#endif
}
inline void decode8(Float8* v, const uint16_t* p) {
#if defined(__F16C__)
  *v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#elif defined(__aarch64__)
  const float32x4_t parts[2] = {vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + 4)))};
  __builtin_memcpy(v, parts, sizeof parts);
#else
  Half8 halves;
  __builtin_memcpy(&halves, p, sizeof halves);
  const Uint8v h = __builtin_convertvector(halves, Uint8v);
  const Uint8v rest = h & 0x7fffu;
  const Uint8v shifted = rest << 13;
  Float8 value;
  __builtin_memcpy(&value, &shifted, sizeof value);
  value *= 0x1p112f;
  Uint8v bits;
  __builtin_memcpy(&bits, &value, sizeof bits);
  const Uint8v special = reinterpret_cast<Uint8v>(rest >= 0x7c00u);
  bits = ((bits & ~special) | ((shifted | 0x7f800000u) & special)) | ((h & 0x8000u) << 16);
  __builtin_memcpy(v, &bits, sizeof bits);
#endif
}
inline float decode1(float x) { return x; }
inline float decode1(int8_t x) { return static_cast<float>(x); }
inline float decode1(uint16_t x) {
  Float8 v;
  uint16_t lanes[8] = {x, 0, 0, 0, 0, 0, 0, 0};
  decode8(&v, lanes);
  return v[0];
}

inline float reduce8(const Float8& a) { return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])); }

// Eight floats, eight decoded row elements and reduce8's sum, over the kParts registers that hold 8 lanes
// (register by register: a copy of the whole array would go through memory).
inline void load_parts(FloatReg* v, const float* p) {
  for (size_t h = 0; h < kParts; ++h) __builtin_memcpy(&v[h], p + h * (8 / kParts), sizeof v[h]);
}
inline void decode_parts(FloatReg* v, const float* p) { load_parts(v, p); }
template <class T>
inline void decode_parts(FloatReg* v, const T* p) {
  Float8 lanes;
  decode8(&lanes, p);
  __builtin_memcpy(v, &lanes, sizeof lanes);
}
inline float reduce_parts(const FloatReg* a) {
#if defined(__AVX__)
  return reduce8(a[0]);
#else
  const FloatReg s = a[0] + a[1];  // lane l: a[l] + a[l + 4], then reduce8's order
  return (s[0] + s[1]) + (s[2] + s[3]);
#endif
}

// a . b over n elements, a in any precision: eight lanes, then a fixed reduction, then the tail.
template <class T>
inline float row_dot(const T* a, const float* b, size_t n) {
  FloatReg acc[kParts] = {};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    FloatReg x[kParts], y[kParts];
    decode_parts(x, a + i);
    load_parts(y, b + i);
    for (size_t h = 0; h < kParts; ++h) acc[h] += x[h] * y[h];
  }
  float tail = 0;
  for (; i < n; ++i) tail += decode1(a[i]) * b[i];
  return reduce_parts(acc) + tail;
}

// reduce_parts of eight rows' accumulators at once: with AVX a transposed reduction (one vector of eight
// sums, in reduce8's order for each row: (a0+a4), (a1+a5), ... then pairs, then the two halves), else
// row by row. The sums are the same either way.
inline void reduce_parts8(const FloatReg (*acc)[kParts], float* sums) {
#if defined(__AVX__)
  const auto halves = [&](size_t a, size_t b) {
    return _mm256_add_ps(_mm256_permute2f128_ps(acc[a][0], acc[b][0], 0x20), _mm256_permute2f128_ps(acc[a][0], acc[b][0], 0x31));
  };
  // Lanes of w: rows 0, 2, 4, 6 in the low half, 1, 3, 5, 7 in the high one.
  const __m256 w = _mm256_hadd_ps(_mm256_hadd_ps(halves(0, 1), halves(2, 3)), _mm256_hadd_ps(halves(4, 5), halves(6, 7)));
  _mm256_storeu_ps(sums, _mm256_permutevar8x32_ps(w, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
#else
  for (size_t r = 0; r < 8; ++r) sums[r] = reduce_parts(acc[r]);
#endif
}

// Scores of kRows rows against one query, each summed in row_dot's order (so a row's score never depends
// on its block): the kRows independent accumulators hide the arithmetic latency that one row's chain of
// 8-lane sums would expose, and one transposed reduction serves eight rows.
template <class T, size_t kRows>
inline void scan_block(const T* rows, const float* scales, size_t dim, const float* query, float* out) {
  FloatReg acc[kRows][kParts] = {};
  size_t i = 0;
  for (; i + 8 <= dim; i += 8) {
    FloatReg x[kParts];
    load_parts(x, query + i);
    for (size_t r = 0; r < kRows; ++r) {
      FloatReg v[kParts];
      decode_parts(v, rows + r * dim + i);
      for (size_t h = 0; h < kParts; ++h) acc[r][h] += v[h] * x[h];
    }
  }
  float sums[kRows];
  if constexpr (kRows == 8) reduce_parts8(acc, sums);
  else
    for (size_t r = 0; r < kRows; ++r) sums[r] = reduce_parts(acc[r]);
  for (size_t r = 0; r < kRows; ++r) {
    float tail = 0;
    for (size_t t = i; t < dim; ++t) tail += decode1(rows[r * dim + t]) * query[t];
    const float score = sums[r] + tail;
    out[r] = scales ? scales[r] * score : score;
  }
}

// Asks for the rows a few kilobytes ahead of the scan: the hardware prefetcher alone left a single-query
// f32 scan at about 60% of the memory bandwidth (it does not run far enough ahead while the core computes).
template <class T>
inline void prefetch_ahead(const T* block, size_t bytes) {
  constexpr size_t kAheadBytes = 4096;
  const char* ahead = reinterpret_cast<const char*>(block) + kAheadBytes;
  for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(ahead + b);
}

// Rows per block of a single-query scan: eight with AVX (eight accumulator chains, and one transposed
// reduction for all), four elsewhere (each row's accumulator is two registers there, and the WASM module's
// size counts).
#if defined(__AVX__)
constexpr size_t kScanRows = 8;
#else
constexpr size_t kScanRows = 4;
#endif

template <class T>
void scan_rows(const T* data, const float* scales, size_t dim, size_t begin, size_t end, const float* query, float* out) {
  size_t r = begin;
  for (; r + kScanRows <= end; r += kScanRows) {
    prefetch_ahead(data + r * dim, kScanRows * dim * sizeof(T));
    scan_block<T, kScanRows>(data + r * dim, scales ? scales + r : nullptr, dim, query, out + (r - begin));
  }
  for (; r < end; ++r) scan_block<T, 1>(data + r * dim, scales ? scales + r : nullptr, dim, query, out + (r - begin));
}

// --- int8 rows: integer dot products against the query rounded to 16-bit integers ------------------------
// Widening each int8 to a float and multiplying in floats cost three instructions per 8 elements and left
// an int8 scan compute-bound at about 1.2x the speed of f32's. Here the query is rounded once to integers
// q16 = round(query / step) with |q16| <= query_limit(dim), and a row's score is
//   scale[r] * (float(sum_i row[i] * q16[i]) * step),
// the sum exact in int32 (|sum| <= dim * 128 * query_limit(dim) < 2^31, in any order of summation), so every
// build gets the same bits. Against the decoded row . query it differs by at most step / 2 * scale[r] *
// sum_i |row[i]| (plus float rounding): with 64 dimensions step is max|query| / 32767. A query holding a NaN
// or an infinity scores NaN on every row.

// 32767, or fewer levels where dim * 128 * 32767 would not fit in an int32 (more than 512 dimensions).
inline int32_t query_limit(size_t dim) {
  const size_t limit = size_t{0x7fffffff} / (128 * dim);
  return static_cast<int32_t>(limit < 32767 ? limit : 32767);
}

// Rounds query[0, dim) to q16 and sets *step; false for a query with a NaN or an infinity.
inline bool quantize_query(const float* query, size_t dim, int16_t* q16, float* step) {
  float largest = 0;
  for (size_t i = 0; i < dim; ++i) {
    if (!std::isfinite(query[i])) return false;
    largest = std::fabs(query[i]) > largest ? std::fabs(query[i]) : largest;
  }
  const float limit = static_cast<float>(query_limit(dim));
  if (largest == 0) {
    for (size_t i = 0; i < dim; ++i) q16[i] = 0;
    *step = 0;
    return true;
  }
  const float inverse = limit / largest;
  for (size_t i = 0; i < dim; ++i) {
    const float v = std::nearbyint(query[i] * inverse);
    q16[i] = static_cast<int16_t>(v > limit ? limit : (v < -limit ? -limit : v));
  }
  *step = largest / limit;
  return true;
}

// The query rounded for int8 rows (one small allocation per call: a scan call covers a thousand rows or
// more); ok() is false for a query with a NaN or an infinity.
class RoundedQuery {
 public:
  RoundedQuery(const float* query, size_t dim) : q16_(dim) { ok_ = dim > 0 && quantize_query(query, dim, q16_.data(), &step_); }
  bool ok() const { return ok_; }
  const int16_t* q16() const { return q16_.data(); }
  float step() const { return step_; }

 private:
  std::vector<int16_t> q16_;
  float step_ = 0;
  bool ok_;
};

inline int32_t dot_i8_i16(const int8_t* row, const int16_t* q16, size_t dim) {
  int32_t lanes[16] = {};
  size_t i = 0;
  for (; i + 16 <= dim; i += 16)
    for (size_t j = 0; j < 16; ++j) lanes[j] += int32_t{row[i + j]} * q16[i + j];
  int32_t sum = 0;
  for (size_t j = 0; j < 16; ++j) sum += lanes[j];
  for (; i < dim; ++i) sum += int32_t{row[i]} * q16[i];
  return sum;
}

// The integer sums of eight consecutive rows.
inline void dot8_i8_i16(const int8_t* rows, const int16_t* q16, size_t dim, int32_t* sums) {
#if defined(__AVX2__)
  __m256i acc[8];
  for (size_t r = 0; r < 8; ++r) acc[r] = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q16 + i));
    for (size_t r = 0; r < 8; ++r) {
      const __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rows + r * dim + i)));
      acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(x, q));
    }
  }
  // Transposed: the halves of h hold the first and second four lanes' sums of rows 0-3 and 4-7.
  const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], acc[1]), _mm256_hadd_epi32(acc[2], acc[3]));
  const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[4], acc[5]), _mm256_hadd_epi32(acc[6], acc[7]));
  const __m256i total = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums), total);
  for (; i < dim; ++i)
    for (size_t r = 0; r < 8; ++r) sums[r] += int32_t{rows[r * dim + i]} * q16[i];
#else
  for (size_t r = 0; r < 8; ++r) sums[r] = dot_i8_i16(rows + r * dim, q16, dim);
#endif
}

inline float integer_score(int32_t sum, float step, float scale) { return scale * (static_cast<float>(sum) * step); }

void scan_rows_quantized(const int8_t* data, const float* scales, size_t dim, size_t begin, size_t end, const int16_t* q16,
                         float step, float* out) {
  size_t r = begin;
  for (; r + 8 <= end; r += 8) {
    prefetch_ahead(data + r * dim, 8 * dim);
    int32_t sums[8];
    dot8_i8_i16(data + r * dim, q16, dim, sums);
    for (size_t j = 0; j < 8; ++j) out[r - begin + j] = integer_score(sums[j], step, scales[r + j]);
  }
  for (; r < end; ++r) out[r - begin] = integer_score(dot_i8_i16(data + r * dim, q16, dim), step, scales[r]);
}

void scan_rows_i8(const int8_t* data, const float* scales, size_t dim, size_t begin, size_t end, const float* query, float* out) {
  const RoundedQuery rounded(query, dim);
  if (!rounded.ok()) {
    for (size_t r = begin; r < end; ++r) out[r - begin] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  scan_rows_quantized(data, scales, dim, begin, end, rounded.q16(), rounded.step(), out);
}

// --- batches: the queries along the vector lanes --------------------------------------------------------
// A tile of kTileRows rows x kTileQueries queries (two registers' lanes) keeps its 2 * kTileRows
// accumulators in registers: per dimension, two loads of queries and kTileRows broadcasts of row elements
// feed 2 * kTileRows multiply-adds (the register blocking of a BLAS sgemm kernel). A pair's score is its
// lane's sum over the dimensions in order, whatever the tile, batch or thread; it may differ from scan()'s
// (eight partial sums) in the last bits, and search_batch re-scores its shortlists with scan().
constexpr size_t kLanes = sizeof(FloatReg) / sizeof(float);
constexpr size_t kTileQueries = 2 * kLanes;
#if defined(__AVX__)
constexpr size_t kTileRows = 6;  // 12 accumulators + 2 query registers + a broadcast of AVX's 16
#else
constexpr size_t kTileRows = 4;  // 8 + 2 + 1 of SSE's 16 (NEON and simd128 have as many or more)
#endif

template <size_t kR>
inline void tile_scores(const float* rows, size_t dim, const float* packed, FloatReg (*out)[2]) {
  // Local accumulators (not `out`, which the compiler would store to at every step).
  FloatReg low[kR] = {}, high[kR] = {};
  for (size_t k = 0; k < dim; ++k) {
    FloatReg b0, b1;
    __builtin_memcpy(&b0, packed + k * kTileQueries, sizeof b0);
    __builtin_memcpy(&b1, packed + k * kTileQueries + kLanes, sizeof b1);
    for (size_t r = 0; r < kR; ++r) {
      const float x = rows[r * dim + k];
      low[r] += x * b0;
      high[r] += x * b1;
    }
  }
  for (size_t r = 0; r < kR; ++r) {
    out[r][0] = low[r];
    out[r][1] = high[r];
  }
}

// out[(r - begin) * count + q] = row r . queries[q]: f16 and int8 rows decoded to floats a tile at a time
// (the matrix product outruns scan()'s integer path once a row serves many queries), times scales[r] where
// there are scales.
template <class T>
void scan_rows_batch(const T* data, const float* scales, size_t dim, size_t begin, size_t end, const std::vector<float>& packed,
                     size_t count, float* out) {
  const size_t blocks = (count + kTileQueries - 1) / kTileQueries;
  std::vector<float> decoded(std::is_same_v<T, float> ? 0 : kTileRows * dim);
  for (size_t r0 = begin; r0 < end; r0 += kTileRows) {
    const size_t n = end - r0 < kTileRows ? end - r0 : kTileRows;
    prefetch_ahead(data + r0 * dim, n * dim * sizeof(T));
    const float* tile;
    if constexpr (std::is_same_v<T, float>) {
      tile = data + r0 * dim;
    } else {
      const T* source = data + r0 * dim;
      size_t i = 0;
      for (; i + 8 <= n * dim; i += 8) {
        Float8 v;
        decode8(&v, source + i);
        __builtin_memcpy(decoded.data() + i, &v, sizeof v);
      }
      for (; i < n * dim; ++i) decoded[i] = decode1(source[i]);
      tile = decoded.data();
    }
    for (size_t b = 0; b < blocks; ++b) {
      FloatReg acc[kTileRows][2];
      const float* block = packed.data() + b * dim * kTileQueries;
      if (n == kTileRows) tile_scores<kTileRows>(tile, dim, block, acc);
      else
        for (size_t r = 0; r < n; ++r) tile_scores<1>(tile + r * dim, dim, block, acc + r);
      const size_t q0 = b * kTileQueries, width = count - q0 < kTileQueries ? count - q0 : kTileQueries;
      for (size_t r = 0; r < n; ++r) {
        float lanes[kTileQueries];
        __builtin_memcpy(lanes, acc[r], sizeof lanes);
        float* row_out = out + (r0 + r - begin) * count + q0;
        for (size_t j = 0; j < width; ++j) row_out[j] = scales ? scales[r0 + r] * lanes[j] : lanes[j];
      }
    }
  }
}

}  // namespace

float dot(const float* a, const float* b, size_t n) { return row_dot(a, b, n); }

void scan_f32(const float* matrix, size_t rows, size_t dim, const float* query, float* out) {
  scan_rows(matrix, nullptr, dim, 0, rows, query, out);
}

void scan(const EmbeddingRows& m, size_t begin, size_t end, const float* query, float* out) {
  switch (m.precision) {
    case Precision::kF16: return scan_rows(static_cast<const uint16_t*>(m.data), nullptr, m.dim, begin, end, query, out);
    case Precision::kI8: return scan_rows_i8(static_cast<const int8_t*>(m.data), m.scales, m.dim, begin, end, query, out);
    default: return scan_rows(static_cast<const float*>(m.data), nullptr, m.dim, begin, end, query, out);
  }
}

void scan_rows_at(const EmbeddingRows& m, const uint32_t* indices, size_t n, const float* query, float* out) {
  switch (m.precision) {
    case Precision::kF16: {
      const uint16_t* data = static_cast<const uint16_t*>(m.data);
      for (size_t i = 0; i < n; ++i) scan_block<uint16_t, 1>(data + size_t{indices[i]} * m.dim, nullptr, m.dim, query, out + i);
      return;
    }
    case Precision::kI8: {
      const int8_t* data = static_cast<const int8_t*>(m.data);
      const RoundedQuery rounded(query, m.dim);
      for (size_t i = 0; i < n; ++i) {
        const size_t r = indices[i];
        out[i] = rounded.ok() ? integer_score(dot_i8_i16(data + r * m.dim, rounded.q16(), m.dim), rounded.step(), m.scales[r])
                              : std::numeric_limits<float>::quiet_NaN();
      }
      return;
    }
    default: {
      const float* data = static_cast<const float*>(m.data);
      for (size_t i = 0; i < n; ++i) scan_block<float, 1>(data + size_t{indices[i]} * m.dim, nullptr, m.dim, query, out + i);
    }
  }
}

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

void dense_forward(const float* weight, const float* bias, size_t out, size_t in, const float* x, float* y) {
  for (size_t o = 0; o < out; ++o) y[o] = bias[o] + dot(weight + o * in, x, in);
}

void dense_forward_batch(const float* weight, const float* bias, size_t out, size_t in, const float* x, size_t batch,
                         float* y) {
  // Four rows at a time share every weight load; the sums run in dot()'s order, so a row's result
  // does not depend on the batch it came in.
  size_t r = 0;
  for (; r + 4 <= batch; r += 4) {
    const float* x0 = x + r * in;
    for (size_t o = 0; o < out; ++o) {
      const float* w = weight + o * in;
      float acc[4][8] = {};
      size_t i = 0;
      for (; i + 8 <= in; i += 8)
        for (size_t j = 0; j < 8; ++j) {
          acc[0][j] += w[i + j] * x0[i + j];
          acc[1][j] += w[i + j] * x0[in + i + j];
          acc[2][j] += w[i + j] * x0[2 * in + i + j];
          acc[3][j] += w[i + j] * x0[3 * in + i + j];
        }
      for (size_t q = 0; q < 4; ++q) {
        float tail = 0;
        for (size_t t = i; t < in; ++t) tail += x0[q * in + t] * w[t];
        const float* a = acc[q];
        y[(r + q) * out + o] = bias[o] + (((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7])) + tail);
      }
    }
  }
  for (; r < batch; ++r) dense_forward(weight, bias, out, in, x + r * in, y + r * out);
}

namespace {

// y = x w with the output width a multiple of 8, the accumulators in registers (FloatReg) along the
// outputs.

template <size_t kVectors>
void matmul_by8(const float* x, size_t rows, size_t in, const float* w, float* y) {
  constexpr size_t kOut = 8 * kVectors;
  constexpr size_t kLanes = sizeof(FloatReg) / sizeof(float);
  constexpr size_t kRegs = kOut / kLanes;
  // Four rows at a time: four independent accumulator chains hide the FMA latency. Each row's sums run
  // in the same order whatever the block, so a row's result does not depend on its neighbours.
  size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    FloatReg acc[4][kRegs] = {};
    for (size_t i = 0; i < in; ++i)
      for (size_t v = 0; v < kRegs; ++v) {
        FloatReg wv;
        __builtin_memcpy(&wv, w + i * kOut + kLanes * v, sizeof wv);
        for (size_t q = 0; q < 4; ++q) acc[q][v] += x[(r + q) * in + i] * wv;
      }
    __builtin_memcpy(y + r * kOut, acc, sizeof acc);
  }
  for (; r < rows; ++r) {
    FloatReg acc[kRegs] = {};
    for (size_t i = 0; i < in; ++i)
      for (size_t v = 0; v < kRegs; ++v) {
        FloatReg wv;
        __builtin_memcpy(&wv, w + i * kOut + kLanes * v, sizeof wv);
        acc[v] += x[r * in + i] * wv;
      }
    __builtin_memcpy(y + r * kOut, acc, sizeof acc);
  }
}

}  // namespace

void matmul(const float* x, size_t rows, size_t in, const float* w, size_t out, float* y) {
  // The co-action micro-MLP's usual widths get registers; the sums run in the same order either way.
  if (out == 8) return matmul_by8<1>(x, rows, in, w, y);
  if (out == 16) return matmul_by8<2>(x, rows, in, w, y);
  for (size_t r = 0; r < rows; ++r) {
    float* yr = y + r * out;
    for (size_t o = 0; o < out; ++o) yr[o] = 0.0f;
    for (size_t i = 0; i < in; ++i) {
      const float xi = x[r * in + i];
      const float* wi = w + i * out;
      for (size_t o = 0; o < out; ++o) yr[o] += xi * wi[o];
    }
  }
}

void tanh_inplace(float* x, size_t n) {
  // Branch-free, so it vectorises: Cephes' tanhf polynomial below |x| = 0.625, and above it
  // 1 - 2 / (exp(2|x|) + 1) with Cephes' expf (range reduction to 2^k e^r, degree-6 polynomial).
  // Within 2 ulp of tanh over the float range; |x| >= 9 gives +-1 as tanh rounds to it.
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float magnitude = std::fabs(v);
    const float a = magnitude < 9.0f ? magnitude : 9.0f;
    const float z = v * v;
    const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
                         3.33332819422e-1f) * z * v + v;
    const float y = 2.0f * a;
    const float k = std::floor(y * 1.44269504088896341f + 0.5f);
    const float r = (y - k * 0.693359375f) + k * 2.12194440e-4f;
    const float p = ((((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
                       1.6666665459e-1f) * r + 5.0000001201e-1f) * r * r) + r + 1.0f;
    const float scale = __builtin_bit_cast(float, static_cast<int32_t>(k + 127.0f) << 23);
    const float large = 1.0f - 2.0f / (p * scale + 1.0f);
    // large > 0 wherever it is chosen, so ORing in v's sign bit is copysign(large, v), done in integer
    // lanes: Clang 14 has no simd128 copysign and went lane by lane.
    const uint32_t sign = __builtin_bit_cast(uint32_t, v) & 0x80000000u;
    x[i] = magnitude < 0.625f ? small : __builtin_bit_cast(float, __builtin_bit_cast(uint32_t, large) | sign);
  }
}

}  // namespace funnel::kernels::FUNNEL_KERNEL_NS
