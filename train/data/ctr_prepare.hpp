// `funnel prepare --ctr`: the ranking stage's CTR instances (ctr_data.hpp's DIN protocol) written once as
// fixed-width rows (prepared.hpp's CtrRowHead + max_history item rows), the training ones in checksummed shards
// that train-ranker, autofas and train-funnel stream (ctr_stream.hpp), the validation and test ones (one
// positive per user, with its negatives) in two small files loaded whole.
//
// prepare_dataset hands the writer one user at a time, in the users table's order, each user's item rows in
// time order with ties in the source's order: build_ctr_instances' order. The training negatives are drawn at
// once, from the generator build_ctr_instances seeds, in its order; the validation and test positives and each
// qualifying user's items wait in two temporary files (bounded by the users, not the interactions), and finish()
// draws their negatives after every training one, as build_ctr_instances does. So the rows are exactly
// build_ctr_instances' instances (the tests check it), and memory is bounded by the users and items.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <vector>

#include "train/core/rng.hpp"
#include "train/data/ctr_data.hpp"
#include "train/data/dataset.hpp"

namespace funnel::train {

class BinaryWriter;
class PreparedFile;

class CtrInstanceWriter {
 public:
  // `tables` names a user in the error when one interacted with every item; it must outlive the writer.
  CtrInstanceWriter(const std::filesystem::path& directory, const Dataset& tables, const CtrOptions& options, uint64_t shard_rows);
  ~CtrInstanceWriter();
  CtrInstanceWriter(const CtrInstanceWriter&) = delete;
  CtrInstanceWriter& operator=(const CtrInstanceWriter&) = delete;

  // One user's item rows in time order (ties in the source's order).
  void add_user(uint32_t user, std::span<const uint32_t> sequence);
  // Writes the validation and test files and returns the manifest's "ctr" section.
  nlohmann::json finish();
  uint64_t train_rows() const { return train_rows_; }
  uint64_t shards() const { return shard_entries_.size(); }

 private:
  void write_train(const uint8_t* row);
  void encode(uint32_t user, uint32_t target, float label, std::span<const uint32_t> history);
  uint32_t draw_negative(std::span<const uint32_t> seen);
  nlohmann::json write_evaluation(const char* name, uint64_t holdout, const PreparedFile& holdouts, const PreparedFile& seen);

  std::filesystem::path directory_;
  const Dataset& tables_;
  CtrOptions options_;
  uint64_t shard_rows_;
  uint32_t row_bytes_;
  Rng rng_;
  std::vector<uint8_t> row_;
  std::unique_ptr<BinaryWriter> shard_, holdouts_, seen_;  // the temporary files: 2 rows per qualifying user, their items
  std::vector<uint64_t> seen_offsets_{0};
  nlohmann::json shard_entries_ = nlohmann::json::array();
  uint64_t train_rows_ = 0;
  std::vector<uint32_t> items_;
};

}  // namespace funnel::train
