#include "funnel/kernels.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>

#include "funnel/kernel_sets.hpp"
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

#define FUNNEL_KERNEL_TABLE(ns)                                                                                     \
  ns::dot, ns::scan_f32, ns::scan, ns::scan_rows_at, ns::prepare_batch, ns::scan_batch, ns::dense_forward, \
      ns::dense_forward_batch, ns::matmul, ns::tanh_inplace

#if defined(FUNNEL_HAVE_AVX2)
constexpr size_t kSetCount = 4;
#else
constexpr size_t kSetCount = 1;
#endif

std::array<KernelSet, kSetCount> make_sets() {
#if defined(__ARM_NEON)
  const char* portable = "neon";  // aarch64, where ASIMD is baseline: the portable kernels compile to NEON
#else
  const char* portable = "generic";
#endif
  std::array<KernelSet, kSetCount> sets{{{portable, "nothing beyond the baseline", true, FUNNEL_KERNEL_TABLE(generic)}}};
#if defined(FUNNEL_HAVE_AVX2)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
  sets[1] = {"avx2+fma", "AVX2, FMA and F16C", avx2, FUNNEL_KERNEL_TABLE(avx2)};
  // Batches, which are compute-bound, run AVX-512 where the CPU has it, and int8 batches multiply bytes
  // with AVX512-VNNI; everything else stays AVX2 (single queries are bound by memory, not arithmetic).
  sets[2] = sets[3] = sets[1];
  sets[2].name = "avx2+fma, avx512 batches";
  sets[2].needs = "AVX2, FMA, F16C and AVX-512F (with the OS saving its registers)";
  sets[2].available = avx2 && cpu_has_avx512f();
  sets[2].prepare_batch = avx512::prepare_batch;
  sets[2].scan_batch = avx512::scan_batch;
  sets[3].name = "avx2+fma, avx512-vnni batches";
  sets[3].needs = "AVX2, FMA, F16C, AVX-512F and AVX512-VNNI (with the OS saving its registers)";
  sets[3].available = avx2 && cpu_has_avx512_vnni();
  sets[3].prepare_batch = avx512vnni::prepare_batch;
  sets[3].scan_batch = avx512vnni::scan_batch;
#endif
  return sets;
}
#undef FUNNEL_KERNEL_TABLE

// The best available set, or FUNNEL_KERNELS=generic or =avx2 caps the choice (to test or time the other
// kernels on a CPU that has better ones); unset or anything else, the best the CPU has.
const KernelSet& choose() {
  const std::span<const KernelSet> sets = kernel_sets();
  const char* cap = std::getenv("FUNNEL_KERNELS");
  const size_t limit = cap && std::strcmp(cap, "generic") == 0 ? 1 : cap && std::strcmp(cap, "avx2") == 0 ? 2 : sets.size();
  size_t best = 0;
  // Each set needs more than the one before it, so the available ones come first.
  while (best + 1 < std::min(limit, sets.size()) && sets[best + 1].available) ++best;
  return sets[best];
}

const KernelSet& table() {
  static const KernelSet& chosen = choose();
  return chosen;
}

}  // namespace

std::span<const KernelSet> kernel_sets() {
  static const std::array<KernelSet, kSetCount> sets = make_sets();
  return sets;
}

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
