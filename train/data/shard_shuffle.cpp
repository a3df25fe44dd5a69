#include "train/data/shard_shuffle.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "train/core/errors.hpp"

namespace funnel::train {

struct ShuffledRows::Hash {
  XXH3_state_t state;
};

ShuffledRows::ShuffledRows(const std::vector<PreparedShard>& shards, PreparedKind kind, uint32_t row_bytes, uint64_t buffer_rows,
                           uint32_t rank, uint32_t world, size_t chunk_rows, Check check)
    : kind_(kind),
      row_bytes_(row_bytes),
      buffer_rows_(buffer_rows),
      chunk_rows_(chunk_rows),
      check_(std::move(check)),
      hash_(std::make_unique<Hash>()),
      out_(row_bytes) {
  if (world == 0 || rank >= world) throw ConfigError("streaming: rank " + std::to_string(rank) + " is not below the world size " + std::to_string(world));
  if (buffer_rows == 0 || chunk_rows == 0) throw ConfigError("streaming: shuffle_buffer and the read chunk must be at least 1 row");
  uint64_t first = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    if (i % world == rank) {
      shards_.push_back({shards[i], first});
      rows_ += shards[i].rows;
    }
    first += shards[i].rows;
  }
  const uint64_t slots = std::min<uint64_t>(buffer_rows_, rows_);
  if (slots > std::numeric_limits<uint32_t>::max()) throw ConfigError("streaming: shuffle_buffer must be below 2^32 rows");
  buffer_.resize(slots * row_bytes_);
  buffer_ids_.resize(slots);
}

ShuffledRows::~ShuffledRows() = default;

void ShuffledRows::start_in_order() {
  start_epoch(nullptr);
  in_order_ = true;
}

void ShuffledRows::start_epoch(Rng& rng) { start_epoch(&rng); }

void ShuffledRows::start_epoch(Rng* rng) {
  rng_ = rng;
  in_order_ = false;
  order_.resize(shards_.size());
  std::iota(order_.begin(), order_.end(), size_t{0});
  if (rng) rng->shuffle(order_);
  next_shard_ = 0;
  file_.reset();
  shard_ = nullptr;
  chunk_rows_held_ = chunk_at_ = 0;
  buffered_ = 0;
  draining_ = false;
  drain_at_ = 0;
}

void ShuffledRows::open_shard(size_t index) {
  shard_ = &shards_[index];
  file_ = std::make_unique<PreparedFile>(shard_->shard.path, kind_, row_bytes_);
  if (file_->count() != shard_->shard.rows)
    throw DataError(shard_->shard.path + ": offset 16: field 'count' is " + std::to_string(file_->count()) + ", the manifest expects " +
                    std::to_string(shard_->shard.rows));
  shard_at_ = 0;
  XXH3_64bits_reset(&hash_->state);
}

void ShuffledRows::finish_shard() {
  if (const uint64_t hash = XXH3_64bits_digest(&hash_->state); hash != shard_->shard.checksum)
    throw DataError(shard_->shard.path + ": checksum " + xxh3_hex(hash) + " differs from the manifest's " + xxh3_hex(shard_->shard.checksum) +
                    ": the shard is corrupt");
  file_.reset();
  shard_ = nullptr;
}

const uint8_t* ShuffledRows::pull(uint64_t* id) {
  while (chunk_at_ == chunk_rows_held_) {
    if (shard_ && shard_at_ == shard_->shard.rows) finish_shard();
    if (!shard_) {
      if (next_shard_ == order_.size()) return nullptr;
      open_shard(order_[next_shard_++]);
      continue;
    }
    const uint64_t n = std::min<uint64_t>(chunk_rows_, shard_->shard.rows - shard_at_);
    chunk_.resize(n * row_bytes_);
    file_->read(shard_at_, n, chunk_.data());
    XXH3_64bits_update(&hash_->state, chunk_.data(), n * row_bytes_);
    if (check_) check_(chunk_.data(), n, shard_->shard, shard_at_);
    shard_at_ += n;
    chunk_rows_held_ = n;
    chunk_at_ = 0;
  }
  *id = shard_->first_id + shard_at_ - chunk_rows_held_ + chunk_at_;
  return chunk_.data() + chunk_at_++ * size_t{row_bytes_};
}

const uint8_t* ShuffledRows::next(uint64_t* id) {
  if (in_order_) return pull(id);
  if (!rng_) throw TrainingError("ShuffledRows::next before start_epoch");
  for (;;) {
    if (draining_) {
      if (drain_at_ == buffered_) return nullptr;
      const uint32_t s = drain_order_[drain_at_++];
      *id = buffer_ids_[s];
      return slot(s);
    }
    uint64_t row_id = 0;
    const uint8_t* row = pull(&row_id);
    if (!row) {
      // Fisher-Yates over the slots: the permutation Rng::shuffle would apply to the buffer itself.
      draining_ = true;
      drain_order_.resize(buffered_);
      std::iota(drain_order_.begin(), drain_order_.end(), 0u);
      rng_->shuffle(drain_order_);
      continue;
    }
    if (buffered_ < buffer_rows_) {
      std::memcpy(slot(buffered_), row, row_bytes_);
      buffer_ids_[buffered_++] = row_id;
      continue;
    }
    const size_t s = rng_->below(buffer_rows_);
    std::memcpy(out_.data(), slot(s), row_bytes_);
    *id = buffer_ids_[s];
    std::memcpy(slot(s), row, row_bytes_);
    buffer_ids_[s] = row_id;
    return out_.data();
  }
}

}  // namespace funnel::train
