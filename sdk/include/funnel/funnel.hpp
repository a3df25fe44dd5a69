// The Funnel SDK: load a .funnel model and recommend from raw features.
#pragma once

#include "funnel/checksum.hpp"
#include "funnel/encoding.hpp"
#include "funnel/features.hpp"
#include "funnel/kernels.hpp"
#include "funnel/model.hpp"
#include "funnel/status.hpp"
#include "funnel/tower.hpp"

namespace funnel {
// The model-file format this SDK writes, the newest it reads (3: checksums), and the oldest it reads (2: key
// tables as StringTables). Every format from kOldestFormatVersion on keeps loading in every later SDK, with
// the same answers (docs/model-file.md, "Format versions"; a golden file per version in tests/data/golden).
inline constexpr uint32_t kFormatVersion = 3;
inline constexpr uint32_t kOldestFormatVersion = 2;
inline constexpr const char* kVersion = "0.1.0";
}  // namespace funnel
