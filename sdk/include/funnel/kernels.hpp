// The inference kernels: the only place where Funnel's inference maths is written. The trainer's
// evaluation and export call these too. Chosen once at start-up: AVX2+FMA where the CPU has it, a
// portable version (auto-vectorised, simd128 in WASM) elsewhere; funnel/kernel_sets.hpp calls each set of
// the build directly (the tests check every one the CPU has).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace funnel {

struct Hit {
  uint32_t index;  // catalogue position
  float score;
};

// The precision item embeddings are stored in (the file's Tensor.dtype of the catalogue).
enum class Precision : uint8_t { kF32 = 0, kF16 = 1, kI8 = 2 };

// A read-only matrix of embeddings [rows, dim] in one precision: float, IEEE binary16 (uint16_t), or
// int8 with one scale per row (row r decodes as scales[r] * q).
struct EmbeddingRows {
  Precision precision = Precision::kF32;
  const void* data = nullptr;
  const float* scales = nullptr;  // kI8 only
  size_t rows = 0;
  size_t dim = 0;
};

namespace kernels {

// Name of the instruction set the kernels run on ("avx2+fma"; "avx2+fma, avx512 batches" or "avx2+fma,
// avx512-vnni batches" where scan_batch runs AVX-512, int8 with AVX512-VNNI; "neon", "generic"; WASM
// builds say "generic" and run simd128). The environment variable FUNNEL_KERNELS=avx2 or =generic, read
// once, caps the choice below what the CPU has (to test or time those kernels).
const char* isa();

float dot(const float* a, const float* b, size_t n);

// out[r] = matrix[r, :] . query for each of `rows` rows of `dim` floats.
void scan_f32(const float* matrix, size_t rows, size_t dim, const float* query, float* out);

// out[r - begin] = row r . query for the rows [begin, end) of any precision; f32 rows score exactly as
// scan_f32. Summed in dot()'s order, so every build (AVX2, generic, NEON, WASM) agrees to rounding.
// int8 rows are multiplied in integers: the query is rounded to q = round(query / step) with
// step = max|query| / L, L = min(32767, floor((2^31 - 1) / (128 dim))), and row r scores
// scales[r] * (float(sum_i row[i] q[i]) * step), the sum exact, so every build gets the same bits; that is
// within step / 2 * scales[r] * sum_i |row[i]| of the decoded row's dot product (with 64 dimensions
// step / 2 is max|query| / 65534). A query holding a NaN or an infinity scores NaN on int8 rows.
void scan(const EmbeddingRows& rows, size_t begin, size_t end, const float* query, float* out);

// out[i] = row indices[i] . query, each exactly as scan() scores that row (indices < rows.rows): the
// re-scoring of a shortlist, with the query rounded once for int8 rows.
void scan_rows_at(const EmbeddingRows& rows, std::span<const uint32_t> indices, const float* query, float* out);

// A batch of queries laid out once for scan_batch, in the tiles of the instruction set chosen at start-up
// (and, for int8 rows with AVX512-VNNI, rounded to bytes). prepare_batch fills it; it points at the
// caller's queries, which must outlive it.
struct BatchQueries {
  const float* queries = nullptr;  // [count, dim]
  size_t count = 0, dim = 0;
  std::vector<float> packed;   // f32 tiles
  std::vector<uint32_t> bytes; // byte tiles (int8 rows with AVX512-VNNI), else empty
  std::vector<float> steps;    // the byte tiles' per-query steps
};
void prepare_batch(const EmbeddingRows& rows, const float* queries, size_t count, BatchQueries* out);

// out[(r - begin) * count + q] = row r . queries[q] for the batch's `count` queries: a register-blocked
// matrix product (rows x queries tiles, as a BLAS sgemm kernel) that reads each row once for the whole
// batch, f16 and int8 rows decoded to floats (or, with AVX512-VNNI, int8 rows multiplied in bytes against
// the queries rounded to 8 bits: within step / 2 * scales[r] * sum_i |row[i]| of the decoded product, step =
// max|query| / 127). A score is summed over the dimensions in order, so it does not depend on the batch,
// but may differ from scan()'s in the last bits (search_batch re-scores with scan_rows_at).
void scan_batch(const EmbeddingRows& rows, size_t begin, size_t end, const BatchQueries& batch, float* out);
// prepare_batch, then scan_batch.
void scan_batch(const EmbeddingRows& rows, size_t begin, size_t end, const float* queries, size_t count, float* out);

// y[o] = bias[o] + weight[o, :] . x, weight row-major [out, in].
void dense_forward(const float* weight, const float* bias, size_t out, size_t in, const float* x, float* y);

// dense_forward for `batch` rows of x [batch, in] into y [batch, out]; each row's result equals
// dense_forward's for that row alone.
void dense_forward_batch(const float* weight, const float* bias, size_t out, size_t in, const float* x, size_t batch,
                         float* y);

// y = x w for x [rows, in] and w [in, out], row-major (the co-action micro-MLP's layout).
void matmul(const float* x, size_t rows, size_t in, const float* w, size_t out, float* y);

// x[i] = tanh(x[i]), within 2 ulp; the one tanh of the SDK and the trainer.
void tanh_inplace(float* x, size_t n);

// The k best scores in descending order; ties go to the lower index, so results never depend on
// the scan order. Entries with skip[i] != 0 are left out (skip may be empty).
void top_k(std::span<const float> scores, size_t k, std::span<const uint8_t> skip, std::vector<Hit>* out);

}  // namespace kernels
}  // namespace funnel
