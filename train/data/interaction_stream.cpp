#include "train/data/interaction_stream.hpp"

#include <algorithm>
#include <numeric>

#include <cstring>

#include "train/core/errors.hpp"

namespace funnel::train {

void InMemoryInteractions::start_epoch(Rng& rng) {
  order_.resize(rows_.size());
  std::iota(order_.begin(), order_.end(), 0u);
  rng.shuffle(order_);
  at_ = 0;
}

size_t InMemoryInteractions::next(size_t count, std::vector<Interaction>* out) {
  const size_t n = std::min(count, order_.size() - at_);
  for (size_t i = 0; i < n; ++i) out->push_back(rows_[order_[at_ + i]]);
  at_ += n;
  return n;
}

ShuffledShards::ShuffledShards(const PreparedDataset& prepared, uint64_t buffer_rows, uint32_t rank, uint32_t world, size_t chunk_rows)
    : world_(world) {
  if (world > 0 && prepared.shards.size() < world)
    throw ConfigError(prepared.directory + ": " + std::to_string(prepared.shards.size()) + " shard" + (prepared.shards.size() == 1 ? "" : "s") +
                      " for " + std::to_string(world) + " ranks: each rank reads its own shards; prepare it again with --shard-rows " +
                      std::to_string(std::max<uint64_t>((prepared.train_rows + world - 1) / world, 1)) + " or fewer");
  const uint64_t users = prepared.data.users.size(), items = prepared.data.items.size();
  const auto check = [users, items](const uint8_t* bytes, uint64_t n, const PreparedShard& shard, uint64_t first) {
    for (uint64_t i = 0; i < n; ++i) {
      Interaction row;
      std::memcpy(&row, bytes + i * sizeof(Interaction), sizeof row);
      if (row.user < users && row.item < items) continue;
      const bool user = row.user >= users;
      throw DataError(shard.path + ": row " + std::to_string(first + i) + " at offset " +
                      std::to_string(sizeof(PreparedHeader) + (first + i) * sizeof(Interaction)) + ": field '" + (user ? "user" : "item") +
                      "' is " + std::to_string(user ? row.user : row.item) + ", out of range (" + std::to_string(user ? users : items) +
                      "): the shard is corrupt");
    }
  };
  rows_ = std::make_unique<ShuffledRows>(prepared.shards, PreparedKind::kTrainRows, static_cast<uint32_t>(sizeof(Interaction)), buffer_rows,
                                         rank, world, chunk_rows, check);
}

ShuffledShards::~ShuffledShards() = default;

size_t ShuffledShards::next(size_t count, std::vector<Interaction>* out) {
  size_t produced = 0;
  uint64_t id = 0;
  for (; produced < count; ++produced) {
    const uint8_t* row = rows_->next(&id);
    if (!row) break;
    Interaction& added = out->emplace_back();
    std::memcpy(&added, row, sizeof added);
  }
  return produced;
}

}  // namespace funnel::train
