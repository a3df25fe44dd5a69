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

std::vector<uint32_t> ShardedTable::plan_request(std::span<const uint32_t> rows) {
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
  request_offsets_.assign(static_cast<size_t>(world), 0);
  for (int r = 1; r < world; ++r)
    request_offsets_[static_cast<size_t>(r)] = request_offsets_[static_cast<size_t>(r - 1)] + request_counts_[static_cast<size_t>(r - 1)];
  std::vector<int> next(request_offsets_);
  request_order_.resize(rows.size());
  std::vector<uint32_t> ids(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const int slot = next[static_cast<size_t>(owners[i])]++;
    request_order_[static_cast<size_t>(slot)] = static_cast<uint32_t>(i);
    ids[static_cast<size_t>(slot)] = rows[i];
  }
  return ids;
}

void ShardedTable::prepare_cache(std::span<const uint32_t> rows) {
  cache_.shape = {rows.size(), dim_};
  cache_.value.resize(rows.size() * dim_);
  cache_.grad.assign(rows.size() * dim_, 0.0f);
  cache_.is_touched.assign(rows.size(), 0);
  cache_.touched.clear();
  for (size_t i = 0; i < rows.size(); ++i) slots_[rows[i]] = static_cast<uint32_t>(i);
}

void ShardedTable::fetch(std::span<const uint32_t> rows) {
  RowExchange exchange(comm_);
  exchange.add(*this, rows);
  exchange.fetch();
}

void ShardedTable::push_gradients() {
  RowExchange exchange(comm_);
  exchange.tables_.push_back(this);
  exchange.fetched_ = true;
  exchange.push_gradients();
}

void RowExchange::add(ShardedTable& table, std::span<const uint32_t> rows) {
  if (&table.comm_ != &comm_)
    throw CommunicationError("rank " + std::to_string(comm_.rank()) + ": table " + table.shard_.name + " is sharded over another communicator");
  if (fetched_) {
    tables_.clear();
    rows_.clear();
    fetched_ = false;
  }
  tables_.push_back(&table);
  rows_.emplace_back(rows.begin(), rows.end());
}

void RowExchange::fetch() {
  const size_t world = static_cast<size_t>(comm_.size()), count = tables_.size();
  // 1. One message of ids per owner: the id count of every table, then every table's ids.
  std::vector<std::vector<uint32_t>> ids(count);
  for (size_t t = 0; t < count; ++t) ids[t] = tables_[t]->plan_request(rows_[t]);
  std::vector<int> send_counts(world, 0);
  std::vector<uint32_t> send;
  for (size_t r = 0; r < world; ++r) {
    for (const ShardedTable* table : tables_) send.push_back(static_cast<uint32_t>(table->request_counts_[r]));
    for (size_t t = 0; t < count; ++t) {
      const auto begin = ids[t].begin() + tables_[t]->request_offsets_[r];
      send.insert(send.end(), begin, begin + tables_[t]->request_counts_[r]);
      send_counts[r] += tables_[t]->request_counts_[r];
    }
    send_counts[r] += static_cast<int>(count);
  }
  std::vector<int> recv_counts;
  const std::vector<uint32_t> asked = comm_.alltoallv<uint32_t>(send, send_counts, &recv_counts);
  for (ShardedTable* table : tables_) {
    table->served_counts_.assign(world, 0);
    table->served_local_.clear();
  }
  size_t at = 0;
  for (size_t s = 0; s < world; ++s) {
    const size_t end = at + static_cast<size_t>(recv_counts[s]), header = at;
    at += count;
    for (size_t t = 0; t < count && at <= end; ++t) {
      const uint32_t n = asked[header + t];
      if (at + n > end) break;
      tables_[t]->served_counts_[s] = static_cast<int>(n);
      for (uint32_t i = 0; i < n; ++i) tables_[t]->served_local_.push_back(tables_[t]->local_index(asked[at + i]));
      at += n;
    }
    if (at != end)
      throw CommunicationError("rank " + std::to_string(comm_.rank()) + ": the row request from rank " + std::to_string(s) +
                               " does not describe " + std::to_string(count) + " tables (do all ranks exchange the same tables?)");
  }
  // 2. One message of values per asking rank, table after table; each side knows the sizes already.
  std::vector<int> answer_counts(world, 0), value_counts(world, 0);
  std::vector<float> answer;
  std::vector<size_t> served_at(count, 0);
  for (size_t s = 0; s < world; ++s)
    for (size_t t = 0; t < count; ++t) {
      const ShardedTable& table = *tables_[t];
      const size_t n = static_cast<size_t>(table.served_counts_[s]), dim = table.dim_;
      for (size_t i = 0; i < n; ++i) {
        const auto row = table.shard_.value.begin() + static_cast<long>(table.served_local_[served_at[t] + i] * dim);
        answer.insert(answer.end(), row, row + static_cast<long>(dim));
      }
      served_at[t] += n;
      answer_counts[s] += static_cast<int>(n * dim);
      value_counts[s] += table.request_counts_[s] * static_cast<int>(dim);
    }
  const std::vector<float> values = comm_.alltoallv_known<float>(answer, answer_counts, value_counts);
  for (size_t t = 0; t < count; ++t) tables_[t]->prepare_cache(rows_[t]);
  at = 0;
  for (size_t r = 0; r < world; ++r)
    for (ShardedTable* table : tables_) {
      const size_t dim = table->dim_;
      for (int k = 0; k < table->request_counts_[r]; ++k, at += dim) {
        const uint32_t i = table->request_order_[static_cast<size_t>(table->request_offsets_[r] + k)];
        std::copy_n(values.begin() + static_cast<long>(at), dim, table->cache_.value.begin() + static_cast<long>(i * dim));
      }
    }
  for (ShardedTable* table : tables_) {
    table->bytes_sent_ += (world - 1) * sizeof(uint32_t) + table->remote_elements(table->request_counts_) * sizeof(uint32_t) +
                          table->remote_elements(table->served_counts_) * table->dim_ * sizeof(float);
    ++table->exchanges_;
  }
  fetched_ = true;
}

void RowExchange::push_gradients() {
  if (!fetched_) throw CommunicationError("rank " + std::to_string(comm_.rank()) + ": gradients pushed before any fetch");
  const size_t world = static_cast<size_t>(comm_.size()), count = tables_.size();
  // One message of gradients per owner, table after table, in the order of the request.
  std::vector<int> send_counts(world, 0), recv_counts(world, 0);
  std::vector<float> send;
  for (size_t r = 0; r < world; ++r)
    for (const ShardedTable* table : tables_) {
      const size_t dim = table->dim_;
      for (int k = 0; k < table->request_counts_[r]; ++k) {
        const uint32_t i = table->request_order_[static_cast<size_t>(table->request_offsets_[r] + k)];
        const auto row = table->cache_.grad.begin() + static_cast<long>(i * dim);
        send.insert(send.end(), row, row + static_cast<long>(dim));
      }
      send_counts[r] += table->request_counts_[r] * static_cast<int>(dim);
      recv_counts[r] += table->served_counts_[r] * static_cast<int>(dim);
    }
  const std::vector<float> received = comm_.alltoallv_known<float>(send, send_counts, recv_counts);
  // In rank order: the sum over the ranks is the same whichever rank owns the row.
  std::vector<size_t> served_at(count, 0);
  size_t at = 0;
  for (size_t s = 0; s < world; ++s)
    for (size_t t = 0; t < count; ++t) {
      ShardedTable& table = *tables_[t];
      const size_t dim = table.dim_;
      for (int i = 0; i < table.served_counts_[s]; ++i, at += dim) {
        const uint32_t local = table.served_local_[served_at[t]++];
        float* g = table.shard_.grad.data() + local * dim;
        const float* from = received.data() + at;
        for (size_t k = 0; k < dim; ++k) g[k] += from[k];
        table.shard_.touch(local);
      }
    }
  for (ShardedTable* table : tables_) {
    table->bytes_sent_ += table->remote_elements(table->request_counts_) * table->dim_ * sizeof(float);
    std::fill(table->cache_.grad.begin(), table->cache_.grad.end(), 0.0f);
  }
}

std::vector<float> ShardedTable::gather(int root, size_t chunk_rows) {
  // In rounds over bounded ranges of global rows: MPI's counts are ints (a gather of more than 2 GiB in one
  // call cannot be described), and root never holds more than the table plus one chunk. In a range each rank
  // sends the values of its rows there, ascending (a contiguous part of its shard); root knows every row's
  // owner, so no ids travel. Every rank makes the same rounds.
  if (chunk_rows == 0) chunk_rows = std::max<size_t>(1, kGatherChunkBytes / (dim_ * sizeof(float)));
  const bool is_root = comm_.rank() == root;
  const int world = comm_.size();
  std::vector<float> full(is_root ? static_cast<size_t>(rows_) * dim_ : 0);
  std::vector<int> counts;
  std::vector<size_t> cursor(static_cast<size_t>(world));
  size_t mine = 0;  // the first owned row not yet sent
  for (size_t begin = 0; begin < rows_; begin += chunk_rows) {
    const size_t end = std::min<size_t>(rows_, begin + chunk_rows);
    const size_t first = mine;
    while (mine < owned_.size() && owned_[mine] < end) ++mine;
    const std::span<const float> part(shard_.value.data() + first * dim_, (mine - first) * dim_);
    const std::vector<float> values = comm_.gatherv<float>(part, root, &counts);
    if (!is_root) continue;
    // counts: floats per rank; each rank's rows of [begin, end) in ascending order.
    size_t at = 0;
    for (int r = 0; r < world; ++r) {
      cursor[static_cast<size_t>(r)] = at;
      at += static_cast<size_t>(counts[static_cast<size_t>(r)]);
    }
    for (size_t row = begin; row < end; ++row) {
      size_t& from = cursor[static_cast<size_t>(owner(static_cast<uint32_t>(row), world))];
      std::copy_n(values.begin() + static_cast<long>(from), dim_, full.begin() + static_cast<long>(row * dim_));
      from += dim_;
    }
  }
  return full;
}

}  // namespace funnel::train
