// Data parallelism's gradient exchange for replicated parameters: after each rank's backward over its part
// of the global batch, every gradient is summed over the ranks (packed into one buffer: one MPI_Allreduce
// per step), so every rank's optimiser takes the same step. The loss must be normalised by the global batch
// for the sum to be the global batch's gradient. A sparse parameter replicated whole (an embedding table
// with embedding_sharding "replicated") also gets the union of the rows any rank touched, so a lazy
// optimiser updates the same rows everywhere. Tables sharded by row exchange theirs in ShardedTable instead.
#pragma once

#include <cstdint>
#include <vector>

#include "train/core/parameter.hpp"
#include "train/distributed/communicator.hpp"

namespace funnel::train {

class GradientAllReduce {
 public:
  GradientAllReduce(Communicator& comm, std::vector<Parameter*> replicated);
  // Collective; nothing to do on one process.
  void reduce();
  // Payload bytes this rank handed to MPI_Allreduce so far (a ring all-reduce sends 2 (N-1)/N of it).
  uint64_t bytes_reduced() const { return bytes_; }

 private:
  Communicator& comm_;
  std::vector<Parameter*> parameters_;
  std::vector<float> buffer_;
  uint64_t bytes_ = 0;
};

}  // namespace funnel::train
