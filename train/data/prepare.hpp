// `funnel prepare`: encodes a dataset once into the prepared form (prepared.hpp, docs/dataset-format.md),
// applying the trainers' split (split.hpp: per-user leave-last-out by time). The interactions stream from the
// text: one pass writes them, encoded, to a temporary file; then users are grouped a bounded block at a time,
// so memory is bounded by the users, the items and `sort_rows`, never by the interactions.
#pragma once

#include <cstdint>
#include <string>

#include "train/data/ctr_data.hpp"

namespace funnel::train {

struct PrepareOptions {
  uint64_t shard_rows = uint64_t{1} << 22;  // training rows per shard (4M rows, 64 MiB); ranks read shards i % world == rank
  uint64_t sort_rows = uint64_t{1} << 24;   // rows held at once while grouping by user (16M rows, 256 MiB)
  std::string root_override;                // as load_dataset's
  // The ranking stage's CTR instances (ctr_prepare.hpp), written when `ctr` is set; the options are fixed here.
  bool ctr = false;
  CtrOptions ctr_options;
  uint64_t ctr_shard_rows = uint64_t{1} << 18;  // CTR rows per shard (16 + 4 max_history bytes each: 56 MiB at 50)
};

struct PrepareSummary {
  uint64_t users = 0;
  uint64_t items = 0;
  uint64_t interactions = 0;
  uint64_t train_rows = 0;
  uint64_t shards = 0;
  uint64_t grouping_passes = 0;
  uint64_t ctr_train_rows = 0;  // with options.ctr
  uint64_t ctr_shards = 0;
};

// Writes the prepared form of the dataset `description_path` describes into `directory` (created if needed;
// an earlier manifest there is removed first and the new one written last, so a folder whose preparation
// failed is never taken for a prepared one). Throws DataError/ConfigError as load_dataset does, and
// TrainingError naming the file when a write fails.
PrepareSummary prepare_dataset(const std::string& description_path, const std::string& directory, const PrepareOptions& options = {});

}  // namespace funnel::train
