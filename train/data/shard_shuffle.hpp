// A prepared folder's shards of fixed-width binary rows, streamed in chunks in a shuffled order: the one
// shuffling code of every streamed trainer (the interactions of interaction_stream.hpp, the CTR instances of
// ctr_stream.hpp). Per epoch: the shards' order is shuffled; rows fill a buffer of `buffer_rows`; once full,
// each new row takes the place of a uniformly drawn one, which is emitted; when the shards are done, the buffer
// is shuffled (Fisher-Yates over the slots) and emitted in order. With one shard and a buffer at least as large
// as it, an epoch is exactly Rng::shuffle's permutation of the shard's rows (the same draws from the same
// generator). Each shard's XXH3 is checked against the manifest at its end and every chunk goes through the
// caller's row check: a corrupt shard stops training with the file and offset.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "train/core/rng.hpp"
#include "train/data/prepared.hpp"

namespace funnel::train {

class ShuffledRows {
 public:
  // Throws DataError naming the shard, the row and its offset when a row of a chunk is out of range.
  using Check = std::function<void(const uint8_t* rows, uint64_t n, const PreparedShard& shard, uint64_t first_row)>;

  // Reads the shards i of `shards` with i % world == rank. A row's id is its position in all the shards in the
  // manifest's order (every rank numbers them alike).
  ShuffledRows(const std::vector<PreparedShard>& shards, PreparedKind kind, uint32_t row_bytes, uint64_t buffer_rows, uint32_t rank,
               uint32_t world, size_t chunk_rows, Check check);
  ~ShuffledRows();
  ShuffledRows(const ShuffledRows&) = delete;
  ShuffledRows& operator=(const ShuffledRows&) = delete;

  uint64_t rows() const { return rows_; }  // this rank's rows per epoch
  uint32_t row_bytes() const { return row_bytes_; }
  // Starts an epoch whose order is drawn from `rng` (which must outlive the epoch): its state at an epoch's
  // end is all the reader's position there is.
  void start_epoch(Rng& rng);
  // Starts a pass over the rows in id order: the shards in the manifest's order, no buffer, no generator.
  void start_in_order();
  // The epoch's next row (valid until the next call) and its id; nullptr once the epoch is over.
  const uint8_t* next(uint64_t* id);

 private:
  void start_epoch(Rng* rng);
  const uint8_t* pull(uint64_t* id);  // the next row of the shards in this epoch's order; nullptr after the last
  void open_shard(size_t index);
  void finish_shard();
  uint8_t* slot(size_t i) { return buffer_.data() + i * size_t{row_bytes_}; }

  struct Shard {
    PreparedShard shard;
    uint64_t first_id;
  };
  std::vector<Shard> shards_;  // this rank's
  PreparedKind kind_;
  uint32_t row_bytes_;
  uint64_t buffer_rows_;
  size_t chunk_rows_;
  Check check_;
  uint64_t rows_ = 0;
  Rng* rng_ = nullptr;
  std::vector<size_t> order_;
  size_t next_shard_ = 0;
  std::unique_ptr<PreparedFile> file_;
  const Shard* shard_ = nullptr;
  uint64_t shard_at_ = 0;  // rows of the current shard read so far
  std::vector<uint8_t> chunk_;
  size_t chunk_rows_held_ = 0, chunk_at_ = 0;
  struct Hash;
  std::unique_ptr<Hash> hash_;
  std::vector<uint8_t> buffer_;  // slots of row_bytes
  std::vector<uint64_t> buffer_ids_;
  size_t buffered_ = 0;
  std::vector<uint32_t> drain_order_;
  bool draining_ = false;
  bool in_order_ = false;
  size_t drain_at_ = 0;
  std::vector<uint8_t> out_;  // the row a replacement emits
};

}  // namespace funnel::train
