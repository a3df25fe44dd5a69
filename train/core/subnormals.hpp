// Adam's second moments of rarely-touched embedding rows decay geometrically into the subnormal range,
// where x86 float arithmetic is about a hundred times slower: a dense step over a large table took
// 20 ns per float. Flushing subnormals to zero on every training thread costs no accuracy that matters.
#pragma once

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace funnel::train {

inline void flush_subnormals_to_zero() {
#if defined(__SSE__)
#pragma omp parallel
  _mm_setcsr(_mm_getcsr() | 0x8040);  // FTZ | DAZ
#endif
}

}  // namespace funnel::train
