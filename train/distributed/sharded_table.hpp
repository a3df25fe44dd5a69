// An embedding table sharded by row over the ranks of a Communicator, and the exchange of the rows a step
// touches (the scheme of HugeCTR's and TorchRec's row-wise sharding, with MPI_Alltoallv):
//
//   owner(row) = mix64(row) mod world            (a fixed hash, so owners do not follow the id order)
//
//   1. fetch(rows):  each rank sends the ids of the rows its batch reads to their owners (Alltoallv of ids),
//                    the owners answer with the rows' values (Alltoallv of floats); they land in cache(),
//                    a compact table of the batch's rows, that the model reads through slots() (global id ->
//                    cache row) in place of the whole table.
//   2. the model's forward and backward read cache().value and accumulate into cache().grad.
//   3. push_gradients(): each rank sends the gradient rows back, in the order of its request (Alltoallv of
//                    floats; the owner kept the ids); the owner sums them over the ranks, in rank order, into
//                    shard().grad and marks the rows touched, so the optimiser (dense or lazy Adam over
//                    shard()) updates the rows this rank owns and no others.
//
// A trainer with several tables exchanges them all at once through a RowExchange: one message per phase for
// every table (ids, values, gradients), so a step makes 4 collective MPI calls however many tables there are
// (an MPI_Alltoall of the id counts and an MPI_Alltoallv of the ids; one MPI_Alltoallv of the values; one of
// the gradients, whose sizes both sides already know). ShardedTable::fetch / push_gradients are the exchange
// of one table.
//
// Every call named collective must be made by every rank, in the same order, even with no rows. Bytes sent
// to other ranks (ids, values, gradients; not what a rank sends itself) are counted per table for the
// benchmark: per step, 4 B per remote rank (the table's id count in the message) + 4 B per remote id +
// 2 x 4 dim B per remote row. Memory per rank: the owned rows (values, gradients
// and the optimiser's moments), the cache (the batch's rows) and 8 B per table row (the slot map and, on the
// owner, the global-to-local index).
//
// Used by the two-tower trainer (train/retrieval/two_tower_training.cpp) and the ranker
// (train/ranking/ranker_parallel.cpp): build one per table, fill shard() with the owned rows (drawn per row,
// train/core/row_init.hpp, or kept from an identical full table with take_owned_rows), hand shard() to the
// optimiser and the checkpoint, bind the model's reads and writes to cache() through slots(), fetch before
// the forward, push after the backward, gather() before evaluation or export. See docs/distributed.md.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "train/core/parameter.hpp"
#include "train/distributed/communicator.hpp"

namespace funnel::train {

class ShardedTable {
  friend class RowExchange;

 public:
  // A table of `rows` rows of `dim` floats, named `name` (the shard and the cache carry the name).
  ShardedTable(Communicator& comm, std::string name, uint32_t rows, size_t dim);

  static int owner(uint32_t row, int world);
  uint32_t rows() const { return rows_; }
  size_t dim() const { return dim_; }
  // The rows this rank owns, ascending: shard() row i is global row owned()[i].
  const std::vector<uint32_t>& owned() const { return owned_; }
  // [owned rows, dim], sparse: for the optimiser and the checkpoint.
  Parameter& shard() { return shard_; }
  const Parameter& shard() const { return shard_; }
  // Keeps this rank's rows of a full table ([rows, dim]; the same on every rank, e.g. the initialisation).
  void take_owned_rows(const float* full);

  // Collective: the values of `rows` (distinct global ids, any order) into cache(), cache row i = rows[i].
  void fetch(std::span<const uint32_t> rows);
  // [fetched rows, dim]: values to read, gradients to accumulate (sparse, per cache row).
  Parameter& cache() { return cache_; }
  const Parameter& cache() const { return cache_; }
  // Global id -> cache row, valid for the ids of the last fetch (indexable by any id below rows()).
  const std::vector<uint32_t>& slots() const { return slots_; }
  // Collective: the cache's gradients to the owners, summed into shard().grad (touched rows marked); the
  // cache's gradients are zeroed.
  void push_gradients();
  // Collective: the whole table ([rows, dim]) on `root`; empty elsewhere. In rounds of at most `chunk_rows`
  // global rows (0: as many as kGatherChunkBytes of values), so that no MPI call carries 2 GiB or more.
  static constexpr size_t kGatherChunkBytes = size_t{256} << 20;
  std::vector<float> gather(int root, size_t chunk_rows = 0);

  // Bytes this rank sent to other ranks since construction, and the number of fetches (steps).
  uint64_t bytes_sent() const { return bytes_sent_; }
  uint64_t exchanges() const { return exchanges_; }

 private:
  Communicator& comm_;
  uint32_t rows_;
  size_t dim_;
  std::vector<uint32_t> owned_;
  Parameter shard_;
  Parameter cache_;
  std::vector<uint32_t> slots_;
  // The last fetch: how many ids went to each rank and in which order (cache rows grouped by owner), and
  // the ids each rank asked of this one (local shard rows), in their order.
  std::vector<int> request_counts_;
  std::vector<int> request_offsets_;     // where each owner's ids begin in request_order_
  std::vector<uint32_t> request_order_;  // cache rows, grouped by owner
  std::vector<int> served_counts_;
  std::vector<uint32_t> served_local_;  // shard rows asked for, grouped by asking rank
  uint64_t bytes_sent_ = 0, exchanges_ = 0;

  uint32_t local_index(uint32_t row) const;
  uint64_t remote_elements(const std::vector<int>& counts) const;
  // RowExchange's steps for this table: the request (the ids grouped by owner, request_counts_ and
  // request_offsets_ say where), and an empty cache for the rows asked for.
  std::vector<uint32_t> plan_request(std::span<const uint32_t> rows);
  void prepare_cache(std::span<const uint32_t> rows);
};

// The row exchange of several tables at once (every table the trainer reads; the same tables, in the same
// order, on every rank). Per step: add(table, rows) for each table, fetch(), the forward and backward on the
// tables' caches, push_gradients(). Each table's cache, slots, bytes and exchange count are as if it had
// been fetched on its own; the sums into the owners' gradients are the same, in the same order.
class RowExchange {
  friend class ShardedTable;

 public:
  explicit RowExchange(Communicator& comm) : comm_(comm) {}
  // Stages `table` (of this exchange's communicator) with the distinct global ids its batch reads; the next
  // fetch() exchanges it. Clears what the previous fetch exchanged.
  void add(ShardedTable& table, std::span<const uint32_t> rows);
  // Collective: every staged table's rows into its cache (3 MPI calls for all the tables).
  void fetch();
  // Collective: the gradients of the last fetch's tables to their owners (1 MPI call).
  void push_gradients();
  // The tables of the last fetch (or staged for the next).
  size_t tables() const { return tables_.size(); }

 private:
  Communicator& comm_;
  std::vector<ShardedTable*> tables_;
  std::vector<std::vector<uint32_t>> rows_;  // per staged table
  bool fetched_ = false;
};

}  // namespace funnel::train
