// The ranking stage trained data-parallel over the ranks of a Communicator (train/distributed/, launched by
// mpirun; docs/distributed.md). With one process every call here is a no-op or the identity, and a run is
// today's bit for bit.
//
//   batches     the global batch is world x batch_size instances of the epoch's one permutation (every rank
//               draws the same); rank r takes the r-th batch_size of them, so 2 ranks x b see what 1 rank x 2b
//               sees, and the losses divide by the global batch's size (ctr_losses.hpp).
//   dense       the MLP's kernels, biases and PReLU slopes: replicated (identical initialisation), gradients
//               summed over the ranks (one all-reduce per step, the loss riding along), the same Adam step on
//               every rank.
//   tables      every embedding table, including CAN's co-action tables (an induction row is a micro-MLP's
//               weights, eq. 5-9: a row like any other, sharded with its table; this model has no dense
//               micro-MLP parameter): "sharded" (ShardedTable, owner = hash(row) mod world: the rows a batch
//               reads are fetched from their owners into the shard's cache, which the model reads and writes
//               (RankerModel::bind_rows; no rank holds a whole table, rank 0 only while it exports), their
//               gradients sent back after the backward, the owner applies the optimiser to its rows; all the tables in one RowExchange: 4
//               collective calls per step however many tables) or "replicated" (every rank holds and
//               updates the whole table; the gradients of the rows any rank touched are summed over the ranks).
//   evaluation  on rank 0, through the SDK on the exported file, after the shards are gathered there; the
//               metrics are broadcast so that every rank keeps the same best epoch.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "train/core/parameter.hpp"
#include "train/distributed/communicator.hpp"
#include "train/distributed/sharded_table.hpp"
#include "train/ranking/ctr_metrics.hpp"
#include "train/ranking/ranker_config.hpp"

namespace funnel::train {

class RankerModel;
struct CtrInstances;

class RankerParallel {
 public:
  RankerParallel(Communicator& comm, RankerModel& model, const RankerConfig& config, const CtrInstances& instances);
  // Binds the model's tables back to their own arrays (the caches go with this object); under sharding they
  // hold the whole table on rank 0 after gather_tables, nothing elsewhere.
  ~RankerParallel();
  RankerParallel(const RankerParallel&) = delete;
  RankerParallel& operator=(const RankerParallel&) = delete;

  Communicator& comm() const { return comm_; }
  bool distributed() const { return comm_.distributed(); }
  // Tables sharded over the ranks (under mpirun with embedding_sharding "sharded").
  bool sharded() const { return !shards_.empty(); }
  // Per embedding table of the model (in parameters() order), its shard when sharded.
  const std::vector<std::unique_ptr<ShardedTable>>& shards() const { return shards_; }
  // What the optimiser updates and the checkpoint keeps: the model's parameters, with each sharded table
  // replaced by this rank's shard of it.
  const std::vector<Parameter*>& optimised() const { return optimised_; }
  // Per optimised parameter, the rows of the whole table it is (a shard: the table's, not the shard's).
  std::vector<size_t> whole_rows() const;

  // This rank's part of a global batch (a span of the epoch's order), possibly empty at the epoch's end.
  std::span<const uint32_t> local_part(std::span<const uint32_t> global) const;
  // Instances in a global batch that starts at `begin` of `n`.
  size_t global_size(size_t begin, size_t n) const;

  // Collective, before the forward of this rank's part: the rows it reads, fetched from their owners into the
  // model's tables (sharded; nothing otherwise).
  void fetch_rows(std::span<const uint32_t> batch);
  // Collective, after the backward: the tables' row gradients to their owners (sharded) or summed over the
  // ranks (replicated), and the dense gradients summed; returns the global batch's loss from this rank's part.
  float reduce_gradients(float local_loss);
  // Collective: the whole tables into rank 0's model (sharded; nothing otherwise), for export and evaluation.
  // Rank 0 holds them until the next fetch_rows, which frees them; no other rank ever holds a whole table.
  void gather_tables();
  // Rank 0's metrics on every rank.
  void share(CtrMetrics& metrics);
  // Bytes this rank sent to the others through the tables' row exchange (sharded; 0 otherwise).
  uint64_t table_bytes_sent() const;

 private:
  static void release(Parameter& table);

  Communicator& comm_;
  RankerModel& model_;
  const CtrInstances& instances_;
  uint32_t batch_size_;
  std::vector<Parameter*> tables_;  // the model's embedding tables
  std::vector<Parameter*> dense_;   // the rest
  std::vector<std::unique_ptr<ShardedTable>> shards_;  // per table when sharded
  RowExchange exchange_;                               // every shard's rows, one exchange per step
  std::vector<Parameter*> optimised_;
  // The rows a batch reads, per table, each once (marked_ clears after every batch).
  std::vector<std::vector<uint32_t>> rows_;
  std::vector<std::vector<uint8_t>> marked_;
  std::vector<float> dense_buffer_;
  bool gathered_ = false;  // rank 0 holds the whole tables (gather_tables)
};

}  // namespace funnel::train
