// Per-row seeded initialisation of embedding tables: row r of a table is drawn from a generator of its own,
// seeded by (the table's seed, r), so the values of a row depend on (seed, table name, row) alone. A rank
// that holds some rows of a table (train/distributed/sharded_table.hpp) draws those and no others, and gets
// exactly the values the whole table drawn in one process has there: sharded == replicated == one process
// from the first step, without any rank ever holding the whole table.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace funnel::train {

enum class RowDistribution {
  kGlorotUniform,   // U(-b, b), b = sqrt(6 / (rows + dim)) of the whole table (Glorot and Bengio 2010, eq. 16)
  kStandardNormal,  // N(0, 1), PyTorch's nn.Embedding default
};

struct RowInit {
  uint64_t seed = 0;  // the table's: table_seed(run seed, name)
  uint64_t rows = 0;  // the whole table's
  uint32_t dim = 0;
  RowDistribution distribution = RowDistribution::kGlorotUniform;
};

// The seed of table `name` in a run whose generator gave `base`: independent of the order tables are made in.
uint64_t table_seed(uint64_t base, std::string_view name);

// Draws rows `rows` (global row ids below init.rows, any order) into `out` ([rows.size(), dim]).
void init_rows(const RowInit& init, std::span<const uint32_t> rows, float* out);
// Draws every row of the table into `out` ([init.rows, dim]).
void init_all_rows(const RowInit& init, float* out);

}  // namespace funnel::train
