// The Funnel SDK: load a .funnel model and recommend from raw features.
#pragma once

#include "funnel/encoding.hpp"
#include "funnel/features.hpp"
#include "funnel/kernels.hpp"
#include "funnel/model.hpp"
#include "funnel/status.hpp"
#include "funnel/tower.hpp"

namespace funnel {
// The newest model-file format this SDK reads and writes.
inline constexpr uint32_t kFormatVersion = 2;
inline constexpr const char* kVersion = "0.1.0";
}  // namespace funnel
