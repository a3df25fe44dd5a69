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

void matmul(const float* x, size_t rows, size_t in, const float* w, size_t out, float* y) {
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

}  // namespace funnel::kernels::FUNNEL_KERNEL_NS
