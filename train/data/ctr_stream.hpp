// The ranking stage's training instances, a batch at a time, in the epoch's shuffled order: the ranker's loop
// and AutoFAS's search read them only through CtrBatches, in memory (InMemoryCtrBatches: a full permutation
// of CtrInstances::train, as the loops always drew it) or streamed from a prepared folder's CTR shards
// (ShuffledCtrShards: `funnel prepare --ctr`, ctr_prepare.hpp; shard order shuffled per epoch, then a seeded
// shuffle buffer, shard_shuffle.hpp), with memory bounded by the buffer and a read chunk.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/core/rng.hpp"
#include "train/data/ctr_data.hpp"
#include "train/data/prepared.hpp"
#include "train/data/shard_shuffle.hpp"

namespace funnel::train {

// A prepared folder's CTR section (the manifest's "ctr"): the options the instances were built with, the
// training shards, and the validation and test instances, loaded whole (one positive per user with its
// negatives: bounded by the users).
struct PreparedCtr {
  std::string directory;
  CtrOptions options;  // as prepared: max_history, negatives, data_seed
  uint32_t row_bytes = 0;
  uint64_t users = 0, items = 0;
  uint64_t train_rows = 0;
  std::vector<PreparedShard> shards;
  uint64_t shuffle_buffer = uint64_t{1} << 18;  // rows; set by the caller before training
};

// Opens the CTR section of a prepared folder (`prepared` from open_prepared) and checks every shard's header
// against the manifest. A training config's CtrOptions must agree with the prepared ones: another negatives
// or data_seed is an error naming the field (the instances are fixed at prepare time); a max_history above the
// prepared one is an error, a smaller one is used (each history is its last `requested.max_history` items,
// which is what build_ctr_instances gives). Fills `evaluation` with the validation and test instances (a
// positive and its negatives share one history, as build_ctr_instances stores them). Throws DataError naming
// the file and field. Rank `rank` of `world` opens only its own shards (i % world == rank): the others are
// listed from the manifest and need not be on its machine.
std::shared_ptr<PreparedCtr> open_prepared_ctr(const PreparedDataset& prepared, const CtrOptions& requested, CtrInstances* evaluation,
                                               uint32_t rank = 0, uint32_t world = 1);

// A batch of training instances: its own CtrInstances whose train split is the batch, each with its history.
struct CtrBatch {
  CtrInstances instances;
  // Each instance's id: its index in CtrInstances::train, or its row in the shards in the manifest's order.
  std::vector<uint32_t> ids;
  size_t size() const { return ids.size(); }
  void clear();
  void add(uint32_t id, uint32_t user, uint32_t target, float label, std::span<const uint32_t> history);
};

class CtrBatches {
 public:
  virtual ~CtrBatches() = default;
  // Instances per epoch (this rank's, when streamed).
  virtual uint64_t rows() const = 0;
  // Starts an epoch whose order is drawn from `rng`, the loop's checkpointed generator (see InteractionBatches).
  virtual void start_epoch(Rng& rng) = 0;
  // Replaces `out` with the epoch's next instances, at most `count`; returns how many (0: the epoch is over).
  virtual size_t next(size_t count, CtrBatch* out) = 0;
  // Every instance once, in id order, `count` at a time, no generator involved (the teacher's outputs).
  virtual void for_each_in_order(size_t count, const std::function<void(const CtrBatch&)>& visit) = 0;
};

class InMemoryCtrBatches final : public CtrBatches {
 public:
  explicit InMemoryCtrBatches(const CtrInstances& instances) : instances_(instances) {}
  uint64_t rows() const override { return instances_.train.size(); }
  void start_epoch(Rng& rng) override;
  size_t next(size_t count, CtrBatch* out) override;
  void for_each_in_order(size_t count, const std::function<void(const CtrBatch&)>& visit) override;

 private:
  void add(uint32_t i, CtrBatch* out) const;
  const CtrInstances& instances_;
  std::vector<uint32_t> order_;
  size_t at_ = 0;
};

// The CTR shards i with i % world == rank. Every row is checked as it is read (user, target and history items
// in range, label 0 or 1, history length at most max_history) and each shard's XXH3 at its end: a corrupt
// shard stops training with the file, row and offset. Histories keep their last `max_history` items.
class ShuffledCtrShards final : public CtrBatches {
 public:
  ShuffledCtrShards(const PreparedCtr& prepared, uint32_t max_history, uint32_t rank = 0, uint32_t world = 1,
                    size_t chunk_rows = size_t{1} << 12);
  uint64_t rows() const override { return rows_.rows(); }
  void start_epoch(Rng& rng) override { rows_.start_epoch(rng); }
  size_t next(size_t count, CtrBatch* out) override;
  void for_each_in_order(size_t count, const std::function<void(const CtrBatch&)>& visit) override;

 private:
  void add(const uint8_t* row, uint64_t id, CtrBatch* out) const;
  const PreparedCtr& prepared_;
  uint32_t max_history_;
  size_t chunk_rows_;
  ShuffledRows rows_;
};

// The ranking loop's batches of `ctr`: streamed when it comes from a prepared folder, else in memory.
std::unique_ptr<CtrBatches> ctr_batches(const CtrDataset& ctr, uint32_t max_history, uint32_t rank = 0, uint32_t world = 1);
// Training instances per epoch, in memory or streamed.
uint64_t train_instance_count(const CtrDataset& ctr);

}  // namespace funnel::train
