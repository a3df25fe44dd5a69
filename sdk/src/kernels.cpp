#include "funnel/kernels.hpp"

#include <algorithm>

namespace funnel::kernels {

#define FUNNEL_DECLARE_KERNELS(ns)                                                                  \
  namespace ns {                                                                                    \
  float dot(const float* a, const float* b, size_t n);                                              \
  void scan_f32(const float* matrix, size_t rows, size_t dim, const float* query, float* out);      \
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
  void (*dense_forward)(const float*, const float*, size_t, size_t, const float*, float*);
  void (*dense_forward_batch)(const float*, const float*, size_t, size_t, const float*, size_t, float*);
  void (*matmul)(const float*, size_t, size_t, const float*, size_t, float*);
  void (*tanh_inplace)(float*, size_t);
};

Table choose() {
#if defined(FUNNEL_HAVE_AVX2)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return {"avx2+fma", avx2::dot, avx2::scan_f32, avx2::dense_forward, avx2::dense_forward_batch, avx2::matmul, avx2::tanh_inplace};
#endif
  return {"generic", generic::dot, generic::scan_f32, generic::dense_forward, generic::dense_forward_batch, generic::matmul, generic::tanh_inplace};
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
  // Better = higher score, then lower index: a strict total order, so ties never depend on scan order.
  const auto better = [](const Hit& a, const Hit& b) {
    return a.score > b.score || (a.score == b.score && a.index < b.index);
  };
  out->clear();
  if (k == 0) return;
  out->reserve(std::min(k, scores.size()));
  // A min-heap (by `better`) of the k best so far: its front is the weakest kept hit.
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!skip.empty() && skip[i]) continue;
    const Hit hit{static_cast<uint32_t>(i), scores[i]};
    if (out->size() < k) {
      out->push_back(hit);
      std::push_heap(out->begin(), out->end(), better);
    } else if (better(hit, out->front())) {
      std::pop_heap(out->begin(), out->end(), better);
      out->back() = hit;
      std::push_heap(out->begin(), out->end(), better);
    }
  }
  std::sort_heap(out->begin(), out->end(), better);
}

}  // namespace funnel::kernels
