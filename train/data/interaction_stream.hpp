// The training interactions of an epoch, a batch at a time, in the epoch's shuffled order: the loops' one
// way to their data, in memory (InMemoryInteractions: a full permutation, as the loops always drew it) or
// streamed from a prepared folder's shards (ShuffledShards: shard order shuffled per epoch, then a seeded
// shuffle buffer), with memory bounded by the buffer and a read chunk.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "train/core/rng.hpp"
#include "train/data/dataset.hpp"
#include "train/data/prepared.hpp"
#include "train/data/shard_shuffle.hpp"

namespace funnel::train {

class InteractionBatches {
 public:
  virtual ~InteractionBatches() = default;
  // Rows per epoch.
  virtual uint64_t rows() const = 0;
  // Starts an epoch whose order is drawn from `rng` (the loop's checkpointed shuffle generator, which must
  // outlive the epoch). Every draw of an epoch comes from it, so at an epoch's end, where checkpoints are
  // written, the generator's state is all the reader's position there is.
  virtual void start_epoch(Rng& rng) = 0;
  // Appends the epoch's next rows, at most `count`, to `out`; returns how many (0: the epoch is over).
  virtual size_t next(size_t count, std::vector<Interaction>* out) = 0;
  // True when the rows are this rank's alone (one rank's shards of a distributed run): the loop trains on
  // each row it gets. False: every rank reads all the rows in the same order and takes its part of each
  // global batch.
  virtual bool rank_local() const { return false; }
};

// The rows in memory, each epoch a Fisher-Yates permutation of them (Rng::shuffle).
class InMemoryInteractions final : public InteractionBatches {
 public:
  explicit InMemoryInteractions(const std::vector<Interaction>& rows) : rows_(rows) {}
  uint64_t rows() const override { return rows_.size(); }
  void start_epoch(Rng& rng) override;
  size_t next(size_t count, std::vector<Interaction>* out) override;

 private:
  const std::vector<Interaction>& rows_;
  std::vector<uint32_t> order_;
  size_t at_ = 0;
};

// A prepared folder's shards i with i % world == rank (a folder with fewer shards than ranks is refused: a rank
// would have no rows), streamed in chunks through ShuffledRows
// (shard_shuffle.hpp: shard order shuffled per epoch, then a seeded shuffle buffer), with memory bounded by
// the buffer and a read chunk. With one shard and a buffer at least as large as it, an epoch is exactly
// InMemoryInteractions' permutation of the shard's rows, which the tests check. Every row is checked as it is
// read (user and item in range) and each shard's XXH3 against the manifest at its end: a corrupt shard stops
// training with the file and offset.
class ShuffledShards final : public InteractionBatches {
 public:
  ShuffledShards(const PreparedDataset& prepared, uint64_t buffer_rows, uint32_t rank = 0, uint32_t world = 1,
                 size_t chunk_rows = size_t{1} << 16);
  ~ShuffledShards() override;
  uint64_t rows() const override { return rows_->rows(); }
  void start_epoch(Rng& rng) override { rows_->start_epoch(rng); }
  size_t next(size_t count, std::vector<Interaction>* out) override;
  bool rank_local() const override { return world_ > 1; }

 private:
  std::unique_ptr<ShuffledRows> rows_;
  uint32_t world_;
};

}  // namespace funnel::train
