#include "train/data/ctr_prepare.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "train/core/errors.hpp"
#include "train/data/prepared.hpp"
#include "train/data/prepared_writer.hpp"

namespace funnel::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr const char* kHoldoutsTemporary = "ctr_holdouts.encoding";
constexpr const char* kSeenTemporary = "ctr_seen.encoding";
}  // namespace

CtrInstanceWriter::CtrInstanceWriter(const fs::path& directory, const Dataset& tables, const CtrOptions& options, uint64_t shard_rows)
    : directory_(directory),
      tables_(tables),
      options_(options),
      shard_rows_(shard_rows),
      row_bytes_(ctr_row_bytes(options.max_history)),
      // build_ctr_instances' generator (see there why the seed is mixed first).
      rng_(Rng(options.data_seed).next()),
      row_(row_bytes_) {
  if (options.max_history == 0 || options.negatives == 0) throw ConfigError("prepare: CTR max_history and negatives must be at least 1");
  if (shard_rows == 0) throw ConfigError("prepare: ctr_shard_rows must be at least 1");
  holdouts_ = std::make_unique<BinaryWriter>(directory / kHoldoutsTemporary, PreparedKind::kCtrEvaluation, row_bytes_);
  seen_ = std::make_unique<BinaryWriter>(directory / kSeenTemporary, PreparedKind::kTrainItems, sizeof(uint32_t));
}

CtrInstanceWriter::~CtrInstanceWriter() {
  holdouts_.reset();
  seen_.reset();
  std::error_code ignored;
  fs::remove(directory_ / kHoldoutsTemporary, ignored);
  fs::remove(directory_ / kSeenTemporary, ignored);
}

void CtrInstanceWriter::encode(uint32_t user, uint32_t target, float label, std::span<const uint32_t> history) {
  const CtrRowHead head{user, target, label, static_cast<uint32_t>(history.size())};
  std::memcpy(row_.data(), &head, sizeof head);
  std::memcpy(row_.data() + sizeof head, history.data(), history.size() * sizeof(uint32_t));
  std::memset(row_.data() + sizeof head + history.size() * sizeof(uint32_t), 0, (options_.max_history - history.size()) * sizeof(uint32_t));
}

void CtrInstanceWriter::write_train(const uint8_t* row) {
  if (!shard_ || shard_->count() == shard_rows_) {
    if (shard_) shard_entries_.push_back(shard_->finish("rows"));
    char name[32];
    std::snprintf(name, sizeof name, "ctr-train-%05zu.bin", shard_entries_.size());
    shard_ = std::make_unique<BinaryWriter>(directory_ / name, PreparedKind::kCtrRows, row_bytes_);
  }
  shard_->write(row, 1);
  ++train_rows_;
}

uint32_t CtrInstanceWriter::draw_negative(std::span<const uint32_t> seen) {
  uint32_t item = 0;
  do item = static_cast<uint32_t>(rng_.below(tables_.items.size()));
  while (std::binary_search(seen.begin(), seen.end(), item));
  return item;
}

void CtrInstanceWriter::add_user(uint32_t user, std::span<const uint32_t> sequence) {
  const size_t n = sequence.size();
  if (n < 3) return;
  items_.assign(sequence.begin(), sequence.end());
  std::sort(items_.begin(), items_.end());
  items_.erase(std::unique(items_.begin(), items_.end()), items_.end());
  if (items_.size() >= tables_.items.size())
    throw DataError(tables_.name + ": user '" + tables_.users.keys[user] + "' interacted with every item, so no negative can be sampled");
  // t is 0-based: the target s_{t+1} with the history s_1..s_t of the protocol, the last max_history of it.
  const auto history = [&](size_t t) {
    const size_t kept = std::min<size_t>(t, options_.max_history);
    return sequence.subspan(t - kept, kept);
  };
  for (size_t t = 1; t + 2 < n; ++t) {
    encode(user, sequence[t], 1.0f, history(t));
    write_train(row_.data());
    for (uint32_t k = 0; k < options_.negatives; ++k) {
      reinterpret_cast<CtrRowHead*>(row_.data())->target = draw_negative(items_);
      reinterpret_cast<CtrRowHead*>(row_.data())->label = 0.0f;
      write_train(row_.data());
    }
  }
  for (size_t t : {n - 2, n - 1}) {
    encode(user, sequence[t], 1.0f, history(t));
    holdouts_->write(row_.data(), 1);
  }
  seen_->write(items_.data(), items_.size());
  seen_offsets_.push_back(seen_->count());
}

json CtrInstanceWriter::write_evaluation(const char* name, uint64_t holdout, const PreparedFile& holdouts, const PreparedFile& seen) {
  BinaryWriter out(directory_ / (std::string("ctr_") + name + ".bin"), PreparedKind::kCtrEvaluation, row_bytes_);
  std::vector<uint32_t> items;
  for (size_t u = 0; u + 1 < seen_offsets_.size(); ++u) {
    holdouts.read(2 * u + holdout, 1, row_.data());
    out.write(row_.data(), 1);
    items.resize(seen_offsets_[u + 1] - seen_offsets_[u]);
    seen.read(seen_offsets_[u], items.size(), items.data());
    for (uint32_t k = 0; k < options_.negatives; ++k) {
      reinterpret_cast<CtrRowHead*>(row_.data())->target = draw_negative(items);
      reinterpret_cast<CtrRowHead*>(row_.data())->label = 0.0f;
      out.write(row_.data(), 1);
    }
  }
  return out.finish();
}

json CtrInstanceWriter::finish() {
  if (shard_) shard_entries_.push_back(shard_->finish("rows"));
  shard_.reset();
  holdouts_->finish();
  seen_->finish();
  const PreparedFile holdouts((directory_ / kHoldoutsTemporary).string(), PreparedKind::kCtrEvaluation, row_bytes_);
  const PreparedFile seen((directory_ / kSeenTemporary).string(), PreparedKind::kTrainItems, sizeof(uint32_t));
  // After every training negative: the validation instances of all users, then the test ones.
  const json validation = write_evaluation("validation", 0, holdouts, seen);
  const json test = write_evaluation("test", 1, holdouts, seen);
  return {{"max_history", options_.max_history},
          {"negatives", options_.negatives},
          {"data_seed", options_.data_seed},
          {"train_rows", train_rows_},
          {"row",
           {{"bytes", row_bytes_},
            {"fields",
             json::array({{{"name", "user"}, {"type", "uint32"}, {"offset", 0}},
                          {{"name", "target"}, {"type", "uint32"}, {"offset", 4}},
                          {{"name", "label"}, {"type", "float32"}, {"offset", 8}},
                          {{"name", "history_length"}, {"type", "uint32"}, {"offset", 12}},
                          {{"name", "history"}, {"type", "uint32[" + std::to_string(options_.max_history) + "]"}, {"offset", 16}}})}}},
          {"shards", shard_entries_},
          {"validation", validation},
          {"test", test}};
}

}  // namespace funnel::train
