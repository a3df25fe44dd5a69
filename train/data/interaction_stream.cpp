#include "train/data/interaction_stream.hpp"

#include <algorithm>
#include <numeric>

#define XXH_INLINE_ALL
#include <xxhash.h>

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

struct ShuffledShards::Hash {
  XXH3_state_t state;
};

ShuffledShards::ShuffledShards(const PreparedDataset& prepared, uint64_t buffer_rows, uint32_t rank, uint32_t world, size_t chunk_rows)
    : users_(prepared.data.users.size()),
      items_(prepared.data.items.size()),
      world_(world),
      buffer_rows_(buffer_rows),
      chunk_rows_(chunk_rows),
      hash_(std::make_unique<Hash>()) {
  if (world == 0 || rank >= world) throw ConfigError("streaming: rank " + std::to_string(rank) + " is not below the world size " + std::to_string(world));
  if (prepared.shards.size() < world)
    throw ConfigError(prepared.directory + ": " + std::to_string(prepared.shards.size()) + " shard" + (prepared.shards.size() == 1 ? "" : "s") +
                      " for " + std::to_string(world) + " ranks: each rank reads its own shards; prepare it again with --shard-rows " +
                      std::to_string(std::max<uint64_t>((prepared.train_rows + world - 1) / world, 1)) + " or fewer");
  if (buffer_rows == 0 || chunk_rows == 0) throw ConfigError("streaming: shuffle_buffer and the read chunk must be at least 1 row");
  for (size_t i = rank; i < prepared.shards.size(); i += world) {
    shards_.push_back(prepared.shards[i]);
    rows_ += prepared.shards[i].rows;
  }
  buffer_.reserve(std::min<uint64_t>(buffer_rows_, rows_));
}

ShuffledShards::~ShuffledShards() = default;

void ShuffledShards::start_epoch(Rng& rng) {
  rng_ = &rng;
  order_.resize(shards_.size());
  std::iota(order_.begin(), order_.end(), size_t{0});
  rng.shuffle(order_);
  next_shard_ = 0;
  file_.reset();
  shard_ = nullptr;
  chunk_.clear();
  chunk_at_ = 0;
  buffer_.clear();
  draining_ = false;
  drain_at_ = 0;
}

void ShuffledShards::open_shard(size_t index) {
  shard_ = &shards_[index];
  file_ = std::make_unique<PreparedFile>(shard_->path, PreparedKind::kTrainRows, sizeof(Interaction));
  if (file_->count() != shard_->rows)
    throw DataError(shard_->path + ": offset 16: field 'count' is " + std::to_string(file_->count()) + ", the manifest expects " +
                    std::to_string(shard_->rows));
  shard_at_ = 0;
  XXH3_64bits_reset(&hash_->state);
}

void ShuffledShards::finish_shard() {
  if (const uint64_t hash = XXH3_64bits_digest(&hash_->state); hash != shard_->checksum)
    throw DataError(shard_->path + ": checksum " + xxh3_hex(hash) + " differs from the manifest's " + xxh3_hex(shard_->checksum) +
                    ": the shard is corrupt");
  file_.reset();
  shard_ = nullptr;
}

bool ShuffledShards::pull(Interaction* row) {
  while (chunk_at_ == chunk_.size()) {
    if (shard_ && shard_at_ == shard_->rows) finish_shard();
    if (!shard_) {
      if (next_shard_ == order_.size()) return false;
      open_shard(order_[next_shard_++]);
      continue;
    }
    const uint64_t n = std::min<uint64_t>(chunk_rows_, shard_->rows - shard_at_);
    chunk_.resize(n);
    file_->read(shard_at_, n, chunk_.data());
    XXH3_64bits_update(&hash_->state, chunk_.data(), n * sizeof(Interaction));
    for (uint64_t i = 0; i < n; ++i)
      if (chunk_[i].user >= users_ || chunk_[i].item >= items_)
        throw DataError(shard_->path + ": row " + std::to_string(shard_at_ + i) + " at offset " +
                        std::to_string(sizeof(PreparedHeader) + (shard_at_ + i) * sizeof(Interaction)) + ": field '" +
                        (chunk_[i].user >= users_ ? "user" : "item") + "' is " +
                        std::to_string(chunk_[i].user >= users_ ? chunk_[i].user : chunk_[i].item) + ", out of range (" +
                        std::to_string(chunk_[i].user >= users_ ? users_ : items_) + "): the shard is corrupt");
    shard_at_ += n;
    chunk_at_ = 0;
  }
  *row = chunk_[chunk_at_++];
  return true;
}

size_t ShuffledShards::next(size_t count, std::vector<Interaction>* out) {
  if (!rng_) throw TrainingError("ShuffledShards::next before start_epoch");
  size_t produced = 0;
  while (produced < count) {
    if (draining_) {
      if (drain_at_ == buffer_.size()) break;
      out->push_back(buffer_[drain_at_++]);
      ++produced;
      continue;
    }
    Interaction row;
    if (!pull(&row)) {
      draining_ = true;
      rng_->shuffle(buffer_);
      continue;
    }
    if (buffer_.size() < buffer_rows_) {
      buffer_.push_back(row);
      continue;
    }
    Interaction& slot = buffer_[rng_->below(buffer_rows_)];
    out->push_back(slot);
    slot = row;
    ++produced;
  }
  return produced;
}

}  // namespace funnel::train
