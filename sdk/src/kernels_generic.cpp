#include <cstddef>

#define FUNNEL_KERNEL_NS generic
#include "kernels_impl.inl"
