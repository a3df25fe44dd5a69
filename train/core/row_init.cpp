#include "train/core/row_init.hpp"

#include <cmath>

#include "train/core/rng.hpp"

namespace funnel::train {

namespace {

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void draw_row(const RowInit& init, double bound, uint64_t row, float* out) {
  Rng rng(mix64(init.seed ^ mix64(row + 0x632BE59BD9B4E019ull)));
  if (init.distribution == RowDistribution::kGlorotUniform) {
    for (uint32_t d = 0; d < init.dim; ++d) out[d] = static_cast<float>(rng.uniform(-bound, bound));
  } else {
    for (uint32_t d = 0; d < init.dim; ++d) out[d] = static_cast<float>(rng.normal());
  }
}

double bound_of(const RowInit& init) { return std::sqrt(6.0 / (static_cast<double>(init.rows) + static_cast<double>(init.dim))); }

}  // namespace

uint64_t table_seed(uint64_t base, std::string_view name) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a of the name
  for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ull;
  return mix64(base ^ mix64(h));
}

void init_rows(const RowInit& init, std::span<const uint32_t> rows, float* out) {
  const double bound = bound_of(init);
  for (size_t i = 0; i < rows.size(); ++i) draw_row(init, bound, rows[i], out + i * init.dim);
}

void init_all_rows(const RowInit& init, float* out) {
  const double bound = bound_of(init);
  for (uint64_t r = 0; r < init.rows; ++r) draw_row(init, bound, r, out + r * init.dim);
}

}  // namespace funnel::train
