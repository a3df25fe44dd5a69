// Built with -mavx2 -mfma -mf16c; only called after __builtin_cpu_supports says the CPU has all three.
#include <cstddef>

#define FUNNEL_KERNEL_NS avx2
#include "kernels_impl.inl"
