#include "funnel/kernels.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "top_k.hpp"

#if defined(FUNNEL_HAVE_AVX2)
#include <cpuid.h>
#endif

namespace funnel::kernels {

#define FUNNEL_DECLARE_KERNELS(ns)                                                                  \
  namespace ns {                                                                                    \
  float dot(const float* a, const float* b, size_t n);                                              \
  void scan_f32(const float* matrix, size_t rows, size_t dim, const float* query, float* out);      \
  void scan(const EmbeddingRows& m, size_t begin, size_t end, const float* query, float* out);      \
  void scan_rows_at(const EmbeddingRows& m, const uint32_t* indices, size_t n, const float* query, float* out); \
  void prepare_batch(const EmbeddingRows& m, const float* queries, size_t count, BatchQueries* out); \
  void scan_batch(const EmbeddingRows& m, size_t begin, size_t end, const BatchQueries& batch, float* out); \
  void dense_forward(const float* weight, const float* bias, size_t out, size_t in, const float* x, \
                     float* y);                                                                     \
  void dense_forward_batch(const float* weight, const float* bias, size_t out, size_t in, const float* x,   \
                           size_t batch, float* y);                                                         \
  void matmul(const float* x, size_t rows, size_t in, const float* w, size_t out, float* y);                \
  void tanh_inplace(float* x, size_t n);                                                                    \
  }
FUNNEL_DECLARE_KERNELS(generic)
#if defined(FUNNEL_HAVE_AVX2)
FUNNEL_DECLARE_KERNELS(avx2)
namespace avx512 {
void prepare_batch(const EmbeddingRows& m, const float* queries, size_t count, BatchQueries* out);
void scan_batch(const EmbeddingRows& m, size_t begin, size_t end, const BatchQueries& batch, float* out);
}
namespace avx512vnni {
void prepare_batch(const EmbeddingRows& m, const float* queries, size_t count, BatchQueries* out);
void scan_batch(const EmbeddingRows& m, size_t begin, size_t end, const BatchQueries& batch, float* out);
}
#endif
#undef FUNNEL_DECLARE_KERNELS

namespace {

struct Table {
  const char* name;
  float (*dot)(const float*, const float*, size_t);
  void (*scan_f32)(const float*, size_t, size_t, const float*, float*);
  void (*scan)(const EmbeddingRows&, size_t, size_t, const float*, float*);
  void (*scan_rows_at)(const EmbeddingRows&, const uint32_t*, size_t, const float*, float*);
  void (*prepare_batch)(const EmbeddingRows&, const float*, size_t, BatchQueries*);
  void (*scan_batch)(const EmbeddingRows&, size_t, size_t, const BatchQueries&, float*);
  void (*dense_forward)(const float*, const float*, size_t, size_t, const float*, float*);
  void (*dense_forward_batch)(const float*, const float*, size_t, size_t, const float*, size_t, float*);
  void (*matmul)(const float*, size_t, size_t, const float*, size_t, float*);
  void (*tanh_inplace)(float*, size_t);
};

#if defined(FUNNEL_HAVE_AVX2)
// F16C (half-precision conversion) from CPUID leaf 1: Clang 14's __builtin_cpu_supports has no "f16c".
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
}
// AVX-512 Foundation (CPUID leaf 7: EBX bit 16) with the OS saving its registers (XCR0: SSE, AVX, opmask and
// both halves of the zmm state), and AVX512-VNNI (ECX bit 11). XGETBV by its opcode's mnemonic in asm: the
// intrinsic needs -mxsave.
bool os_saves_avx512() {
  unsigned eax = 0, edx = 0;
  __asm__("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (eax & 0xe6u) == 0xe6u;
}
bool cpu_has_avx512f() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (ebx & (1u << 16)) != 0 && os_saves_avx512();
}
bool cpu_has_avx512_vnni() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return cpu_has_avx512f() && __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 11)) != 0;
}
#endif

// FUNNEL_KERNELS=generic or =avx2 caps the choice (to test or time the other kernels on a CPU that has
// better ones); unset or anything else, the best the CPU has.
Table choose() {
  const char* cap = std::getenv("FUNNEL_KERNELS");
  const bool generic_only = cap && std::strcmp(cap, "generic") == 0, avx2_only = cap && std::strcmp(cap, "avx2") == 0;
  (void)generic_only;  // builds without the AVX2 kernels have nothing to cap
  (void)avx2_only;
#if defined(FUNNEL_HAVE_AVX2)
  __builtin_cpu_init();
  if (!generic_only && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c()) {
    Table avx2_table{"avx2+fma", avx2::dot, avx2::scan_f32, avx2::scan, avx2::scan_rows_at, avx2::prepare_batch, avx2::scan_batch, avx2::dense_forward, avx2::dense_forward_batch, avx2::matmul, avx2::tanh_inplace};
    // Batches, which are compute-bound, run AVX-512 where the CPU has it, and int8 batches multiply bytes
    // with AVX512-VNNI; everything else stays AVX2 (single queries are bound by memory, not arithmetic).
    if (avx2_only) return avx2_table;
    if (cpu_has_avx512_vnni()) {
      avx2_table.name = "avx2+fma, avx512-vnni batches";
      avx2_table.prepare_batch = avx512vnni::prepare_batch;
      avx2_table.scan_batch = avx512vnni::scan_batch;
    } else if (cpu_has_avx512f()) {
      avx2_table.name = "avx2+fma, avx512 batches";
      avx2_table.prepare_batch = avx512::prepare_batch;
      avx2_table.scan_batch = avx512::scan_batch;
    }
    return avx2_table;
  }
#endif
#if defined(__ARM_NEON)
  const char* name = "neon";  // aarch64, where ASIMD is baseline: the portable kernels compile to NEON
#else
  const char* name = "generic";
#endif
  return {name, generic::dot, generic::scan_f32, generic::scan, generic::scan_rows_at, generic::prepare_batch, generic::scan_batch, generic::dense_forward, generic::dense_forward_batch, generic::matmul, generic::tanh_inplace};
}

const Table& table() {
  static const Table chosen = choose();
  return chosen;
}

}  // namespace

const char* isa() { return table().name; }

float dot(const float* a, const float* b, size_t n) { return table().dot(a, b, n); }

void scan_f32(const float* matrix, size_t rows, size_t dim, const float* query, float* out) {
  table().scan_f32(matrix, rows, dim, query, out);
}

void scan(const EmbeddingRows& rows, size_t begin, size_t end, const float* query, float* out) {
  table().scan(rows, begin, end, query, out);
}

void scan_rows_at(const EmbeddingRows& rows, std::span<const uint32_t> indices, const float* query, float* out) {
  table().scan_rows_at(rows, indices.data(), indices.size(), query, out);
}

void prepare_batch(const EmbeddingRows& rows, const float* queries, size_t count, BatchQueries* out) {
  table().prepare_batch(rows, queries, count, out);
}

void scan_batch(const EmbeddingRows& rows, size_t begin, size_t end, const BatchQueries& batch, float* out) {
  table().scan_batch(rows, begin, end, batch, out);
}

void scan_batch(const EmbeddingRows& rows, size_t begin, size_t end, const float* queries, size_t count, float* out) {
  BatchQueries batch;
  prepare_batch(rows, queries, count, &batch);
  scan_batch(rows, begin, end, batch, out);
}

void dense_forward(const float* weight, const float* bias, size_t out, size_t in, const float* x, float* y) {
  table().dense_forward(weight, bias, out, in, x, y);
}

void dense_forward_batch(const float* weight, const float* bias, size_t out, size_t in, const float* x, size_t batch,
                         float* y) {
  table().dense_forward_batch(weight, bias, out, in, x, batch, y);
}

void matmul(const float* x, size_t rows, size_t in, const float* w, size_t out, float* y) {
  table().matmul(x, rows, in, w, out, y);
}

void tanh_inplace(float* x, size_t n) { table().tanh_inplace(x, n); }

void top_k(std::span<const float> scores, size_t k, std::span<const uint8_t> skip, std::vector<Hit>* out) {
  TopK best(k);
  best.offer(scores.data(), scores.size(), 0, skip);
  best.take_sorted(out);
}

}  // namespace funnel::kernels
