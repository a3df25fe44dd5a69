// Kernel bodies, compiled once per instruction set (see kernels_generic.cpp and kernels_avx2.cpp).
// Eight independent accumulators in a fixed order: the compiler turns them into one SIMD register
// (AVX2 / SSE / simd128) without -ffast-math, and every build sums in the same order, so native and
// WASM agree to rounding.

namespace funnel::kernels::FUNNEL_KERNEL_NS {

float dot(const float* a, const float* b, size_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (size_t j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float tail = 0;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

void scan_f32(const float* matrix, size_t rows, size_t dim, const float* query, float* out) {
  for (size_t r = 0; r < rows; ++r) out[r] = dot(matrix + r * dim, query, dim);
}

void dense_forward(const float* weight, const float* bias, size_t out, size_t in, const float* x, float* y) {
  for (size_t o = 0; o < out; ++o) y[o] = bias[o] + dot(weight + o * in, x, in);
}

}  // namespace funnel::kernels::FUNNEL_KERNEL_NS
