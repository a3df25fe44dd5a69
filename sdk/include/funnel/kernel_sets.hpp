// Every set of inference kernels this build has, each callable directly: for the test that runs every
// kernel on every instruction set the CPU has against a scalar reference in one run
// (tests/sdk/test_kernels.cpp), and for benchmarks that compare the sets. Applications need none of it:
// the functions of funnel/kernels.hpp run the best set the CPU has (isa() names it; FUNNEL_KERNELS caps it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "funnel/kernels.hpp"

namespace funnel::kernels {

// One instruction set's kernels: kernels.hpp's functions with the same contracts (scan_rows_at takes the
// indices as a pointer and a count).
struct KernelSet {
  const char* name;  // what isa() says while this set runs
  const char* needs;  // what the CPU must have, for messages: "AVX2, FMA and F16C", ...
  bool available;     // this CPU and operating system can run it
  float (*dot)(const float* a, const float* b, size_t n);
  void (*scan_f32)(const float* matrix, size_t rows, size_t dim, const float* query, float* out);
  void (*scan)(const EmbeddingRows& rows, size_t begin, size_t end, const float* query, float* out);
  void (*scan_rows_at)(const EmbeddingRows& rows, const uint32_t* indices, size_t count, const float* query, float* out);
  void (*prepare_batch)(const EmbeddingRows& rows, const float* queries, size_t count, BatchQueries* out);
  void (*scan_batch)(const EmbeddingRows& rows, size_t begin, size_t end, const BatchQueries& batch, float* out);
  void (*dense_forward)(const float* weight, const float* bias, size_t out, size_t in, const float* x, float* y);
  void (*dense_forward_batch)(const float* weight, const float* bias, size_t out, size_t in, const float* x, size_t batch, float* y);
  void (*matmul)(const float* x, size_t rows, size_t in, const float* w, size_t out, float* y);
  void (*tanh_inplace)(float* x, size_t n);
};

// The sets of this build, the portable one first ("generic", or "neon" on 64-bit ARM), then each set that
// needs more of the CPU than the one before: on x86-64 "avx2+fma", "avx2+fma, avx512 batches" and "avx2+fma,
// avx512-vnni batches" (the AVX2 kernels with AVX-512 batches, int8 ones in bytes with AVX512-VNNI). The
// functions of kernels.hpp run the last available one, or the one FUNNEL_KERNELS caps the choice at.
std::span<const KernelSet> kernel_sets();

}  // namespace funnel::kernels
