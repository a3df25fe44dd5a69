#include "funnel/kernels.hpp"

#include <algorithm>

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
  void scan_batch(const EmbeddingRows& m, size_t begin, size_t end, const float* queries, size_t count, \
                  float* out);                                                                      \
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
#endif
#undef FUNNEL_DECLARE_KERNELS

namespace {

struct Table {
  const char* name;
  float (*dot)(const float*, const float*, size_t);
  void (*scan_f32)(const float*, size_t, size_t, const float*, float*);
  void (*scan)(const EmbeddingRows&, size_t, size_t, const float*, float*);
  void (*scan_batch)(const EmbeddingRows&, size_t, size_t, const float*, size_t, float*);
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
#endif

Table choose() {
#if defined(FUNNEL_HAVE_AVX2)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c())
    return {"avx2+fma", avx2::dot, avx2::scan_f32, avx2::scan, avx2::scan_batch, avx2::dense_forward, avx2::dense_forward_batch, avx2::matmul, avx2::tanh_inplace};
#endif
#if defined(__ARM_NEON)
  const char* name = "neon";  // aarch64, where ASIMD is baseline: the portable kernels compile to NEON
#else
  const char* name = "generic";
#endif
  return {name, generic::dot, generic::scan_f32, generic::scan, generic::scan_batch, generic::dense_forward, generic::dense_forward_batch, generic::matmul, generic::tanh_inplace};
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

void scan_batch(const EmbeddingRows& rows, size_t begin, size_t end, const float* queries, size_t count, float* out) {
  table().scan_batch(rows, begin, end, queries, count, out);
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
