#include "train/distributed/sharded_table.hpp"

#include <algorithm>

namespace funnel::train {

namespace {

// SplitMix64's finaliser: consecutive ids land on different owners.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

int ShardedTable::owner(uint32_t row, int world) { return static_cast<int>(mix64(row + 0x9E3779B97F4A7C15ull) % static_cast<uint64_t>(world)); }

ShardedTable::ShardedTable(Communicator& comm, std::string name, uint32_t rows, size_t dim)
    : comm_(comm), rows_(rows), dim_(dim), shard_(name, {0, dim}), cache_(name, {0, dim}), slots_(rows, 0) {
  for (uint32_t r = 0; r < rows; ++r)
    if (owner(r, comm.size()) == comm.rank()) owned_.push_back(r);
  shard_ = Parameter(name, {owned_.size(), dim});
  shard_.make_sparse(dim);
  cache_.make_sparse(dim);
}

void ShardedTable::take_owned_rows(const float* full) {
  for (size_t i = 0; i < owned_.size(); ++i)
    std::copy(full + owned_[i] * dim_, full + (owned_[i] + 1) * dim_, shard_.value.begin() + static_cast<long>(i * dim_));
}

uint32_t ShardedTable::local_index(uint32_t row) const {
  const auto it = std::lower_bound(owned_.begin(), owned_.end(), row);
  if (it == owned_.end() || *it != row)
    throw CommunicationError("rank " + std::to_string(comm_.rank()) + ": table " + shard_.name + " was asked for row " +
                             std::to_string(row) + ", which it does not own");
  return static_cast<uint32_t>(it - owned_.begin());
}

uint64_t ShardedTable::remote_elements(const std::vector<int>& counts) const {
  uint64_t n = 0;
  for (size_t r = 0; r < counts.size(); ++r)
    if (static_cast<int>(r) != comm_.rank()) n += static_cast<uint64_t>(counts[r]);
  return n;
}

void ShardedTable::fetch(std::span<const uint32_t> rows) {
  const int world = comm_.size();
  // The request: ids grouped by owner (a counting sort keeps each owner's ids in the caller's order).
  request_counts_.assign(static_cast<size_t>(world), 0);
  std::vector<int> owners(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] >= rows_)
      throw CommunicationError("rank " + std::to_string(comm_.rank()) + ": row " + std::to_string(rows[i]) + " of table " + shard_.name +
                               " is out of range (" + std::to_string(rows_) + " rows)");
    ++request_counts_[static_cast<size_t>(owners[i] = owner(rows[i], world))];
  }
  std::vector<int> next(static_cast<size_t>(world), 0);
  for (int r = 1; r < world; ++r) next[static_cast<size_t>(r)] = next[static_cast<size_t>(r - 1)] + request_counts_[static_cast<size_t>(r - 1)];
  request_order_.resize(rows.size());
  std::vector<uint32_t> ids(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const int slot = next[static_cast<size_t>(owners[i])]++;
    request_order_[static_cast<size_t>(slot)] = static_cast<uint32_t>(i);
    ids[static_cast<size_t>(slot)] = rows[i];
  }
  const std::vector<uint32_t> asked = comm_.alltoallv<uint32_t>(ids, request_counts_, &served_counts_);
  served_local_.resize(asked.size());
  std::vector<float> answer(asked.size() * dim_);
  for (size_t i = 0; i < asked.size(); ++i) {
    served_local_[i] = local_index(asked[i]);
    std::copy_n(shard_.value.begin() + static_cast<long>(served_local_[i] * dim_), dim_, answer.begin() + static_cast<long>(i * dim_));
  }
  std::vector<int> answer_counts(served_counts_);
  for (int& c : answer_counts) c *= static_cast<int>(dim_);
  const std::vector<float> values = comm_.alltoallv<float>(answer, answer_counts);
  bytes_sent_ += remote_elements(request_counts_) * sizeof(uint32_t) + remote_elements(served_counts_) * dim_ * sizeof(float);
  ++exchanges_;

  cache_.shape = {rows.size(), dim_};
  cache_.value.resize(rows.size() * dim_);
  cache_.grad.assign(rows.size() * dim_, 0.0f);
  cache_.is_touched.assign(rows.size(), 0);
  cache_.touched.clear();
  for (size_t k = 0; k < rows.size(); ++k) {
    const uint32_t i = request_order_[k];
    std::copy_n(values.begin() + static_cast<long>(k * dim_), dim_, cache_.value.begin() + static_cast<long>(i * dim_));
    slots_[rows[i]] = i;
  }
}

void ShardedTable::push_gradients() {
  std::vector<float> send(request_order_.size() * dim_);
  for (size_t k = 0; k < request_order_.size(); ++k)
    std::copy_n(cache_.grad.begin() + static_cast<long>(request_order_[k] * dim_), dim_, send.begin() + static_cast<long>(k * dim_));
  std::vector<int> counts(request_counts_);
  for (int& c : counts) c *= static_cast<int>(dim_);
  const std::vector<float> received = comm_.alltoallv<float>(send, counts);
  bytes_sent_ += remote_elements(request_counts_) * dim_ * sizeof(float);
  // In rank order: the sum over the ranks is the same whichever rank owns the row.
  for (size_t i = 0; i < served_local_.size(); ++i) {
    float* g = shard_.grad.data() + served_local_[i] * dim_;
    const float* from = received.data() + i * dim_;
    for (size_t k = 0; k < dim_; ++k) g[k] += from[k];
    shard_.touch(served_local_[i]);
  }
  std::fill(cache_.grad.begin(), cache_.grad.end(), 0.0f);
}

std::vector<float> ShardedTable::gather(int root) {
  std::vector<uint32_t> owned(owned_);
  const std::vector<uint32_t> all_rows = comm_.gatherv<uint32_t>(owned, root);
  const std::vector<float> all_values = comm_.gatherv<float>(shard_.value, root);
  if (comm_.rank() != root) return {};
  std::vector<float> full(static_cast<size_t>(rows_) * dim_);
  for (size_t i = 0; i < all_rows.size(); ++i)
    std::copy_n(all_values.begin() + static_cast<long>(i * dim_), dim_, full.begin() + static_cast<long>(all_rows[i] * dim_));
  return full;
}

}  // namespace funnel::train
