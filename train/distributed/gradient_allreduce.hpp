// Data parallelism's gradient exchange for replicated parameters: after each rank's backward over its part
// of the global batch, every gradient is summed over the ranks, so every rank's optimiser takes the same step.
// The loss must be normalised by the global batch for the sum to be the global batch's gradient.
//
// Dense parameters go whole. A sparse parameter replicated whole (an embedding table with embedding_sharding
// "replicated") goes by its touched rows: the union of the rows any rank touched (one MPI_Allgatherv of row ids
// per table; sorted, so the same list on every rank), and only those rows' gradients; a row no rank touched has
// a zero gradient everywhere, which the sum would not change. The union is marked touched on every rank, so a
// lazy optimiser updates the same rows everywhere. Everything (dense, rows, and floats riding along such as
// the loss) is packed into one MPI_Allreduce. Used by the two-tower trainer (GradientAllReduce) and the ranker
// (train/ranking/ranker_parallel.cpp). Tables sharded by row exchange theirs in ShardedTable instead.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "train/core/parameter.hpp"
#include "train/distributed/communicator.hpp"

namespace funnel::train {

// Collective: sums over the ranks `dense`'s whole gradients, the touched rows' gradients of the sparse
// parameters `tables` (their union over the ranks, marked touched) and `extra` (in place), in one
// MPI_Allreduce after one MPI_Allgatherv per table. `buffer` is scratch kept by the caller. Returns the floats
// reduced (the payload).
size_t allreduce_touched_gradients(Communicator& comm, std::span<Parameter* const> dense, std::span<Parameter* const> tables,
                                   std::span<float> extra, std::vector<float>& buffer);

class GradientAllReduce {
 public:
  // The sparse ones among `replicated` go by touched rows, the rest whole.
  GradientAllReduce(Communicator& comm, std::vector<Parameter*> replicated);
  // Collective; nothing to do on one process.
  void reduce();
  // Payload bytes this rank handed to MPI_Allreduce so far (a ring all-reduce sends 2 (N-1)/N of it).
  uint64_t bytes_reduced() const { return bytes_; }

 private:
  Communicator& comm_;
  std::vector<Parameter*> dense_, tables_;
  std::vector<float> buffer_;
  uint64_t bytes_ = 0;
};

}  // namespace funnel::train
