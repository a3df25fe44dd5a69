// Kernel bodies, compiled once per instruction set (see kernels_generic.cpp and kernels_avx2.cpp).
// Eight independent accumulators in a fixed order: the compiler turns them into one SIMD register
// (AVX2 / SSE / simd128) without -ffast-math, and every build sums in the same order, so native and
// WASM agree to rounding.

#include <cmath>
#include <cstdint>

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

namespace {

// y = x w with the output width a multiple of 8, in vectors of 8 floats (GCC/Clang vector extensions:
// one AVX register, two SSE or simd128 registers): the accumulators stay in registers along the outputs.
typedef float Float8 __attribute__((vector_size(32)));

// Through a pointer rather than a return value: a 32-byte vector returned by value warns (-Wpsabi)
// in the builds without AVX.
inline void load8(Float8* v, const float* p) { __builtin_memcpy(v, p, sizeof *v); }

template <size_t kVectors>
void matmul_by8(const float* x, size_t rows, size_t in, const float* w, float* y) {
  constexpr size_t kOut = 8 * kVectors;
  // Four rows at a time: four independent accumulator chains hide the FMA latency. Each row's sums run
  // in the same order whatever the block, so a row's result does not depend on its neighbours.
  size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    Float8 acc[4][kVectors] = {};
    for (size_t i = 0; i < in; ++i)
      for (size_t v = 0; v < kVectors; ++v) {
        Float8 wv;
        load8(&wv, w + i * kOut + 8 * v);
        for (size_t q = 0; q < 4; ++q) acc[q][v] += x[(r + q) * in + i] * wv;
      }
    __builtin_memcpy(y + r * kOut, acc, sizeof acc);
  }
  for (; r < rows; ++r) {
    Float8 acc[kVectors] = {};
    for (size_t i = 0; i < in; ++i)
      for (size_t v = 0; v < kVectors; ++v) {
        Float8 wv;
        load8(&wv, w + i * kOut + 8 * v);
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
    x[i] = magnitude < 0.625f ? small : std::copysign(large, v);
  }
}

}  // namespace funnel::kernels::FUNNEL_KERNEL_NS
