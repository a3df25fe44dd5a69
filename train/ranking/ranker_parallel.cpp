#include "train/ranking/ranker_parallel.hpp"

#include <algorithm>
#include <unordered_map>

#include "train/data/ctr_data.hpp"
#include "train/ranking/ranker_model.hpp"

namespace funnel::train {

RankerParallel::RankerParallel(Communicator& comm, RankerModel& model, const RankerConfig& config, const CtrInstances& instances)
    : comm_(comm), model_(model), instances_(instances), batch_size_(config.batch_size), exchange_(comm) {
  for (Parameter* p : model.parameters()) (p->sparse ? tables_ : dense_).push_back(p);
  const bool shard = comm.distributed() && config.embedding_sharding == "sharded";
  for (Parameter* p : model.parameters()) {
    if (!shard || !p->sparse) {
      optimised_.push_back(p);
      continue;
    }
    // Every rank initialised the whole table identically (same seed): each keeps its own rows of it.
    shards_.push_back(std::make_unique<ShardedTable>(comm, p->name, static_cast<uint32_t>(p->shape[0]), p->row_size));
    shards_.back()->take_owned_rows(p->value.data());
    optimised_.push_back(&shards_.back()->shard());
  }
  rows_.resize(tables_.size());
  for (const Parameter* p : tables_) marked_.emplace_back(shard ? p->shape[0] : 0, 0);
}

std::vector<size_t> RankerParallel::whole_rows() const {
  std::vector<size_t> rows;
  size_t next_shard = 0;
  for (const Parameter* p : optimised_) {
    const bool shard = next_shard < shards_.size() && p == &shards_[next_shard]->shard();
    rows.push_back(shard ? shards_[next_shard++]->rows() : p->sparse ? p->size() / p->row_size : 0);
  }
  return rows;
}

size_t RankerParallel::global_size(size_t begin, size_t n) const {
  return std::min(n - begin, size_t{batch_size_} * static_cast<size_t>(comm_.size()));
}

std::span<const uint32_t> RankerParallel::local_part(std::span<const uint32_t> global) const {
  const size_t begin = std::min(global.size(), size_t{batch_size_} * static_cast<size_t>(comm_.rank()));
  return global.subspan(begin, std::min(global.size() - begin, size_t{batch_size_}));
}

void RankerParallel::fetch_rows(std::span<const uint32_t> batch) {
  if (!sharded()) return;
  std::unordered_map<const Parameter*, size_t> index;
  for (size_t t = 0; t < tables_.size(); ++t) {
    index[tables_[t]] = t;
    rows_[t].clear();
  }
  model_.for_each_row_read(instances_, instances_.train, batch, [&](const Parameter* p, uint32_t row) {
    const size_t t = index.at(p);
    if (!marked_[t][row]) {
      marked_[t][row] = 1;
      rows_[t].push_back(row);
    }
  });
  // Every rank fetches every table, in the same order, even with no rows of it: all in one exchange.
  for (size_t t = 0; t < tables_.size(); ++t) {
    for (uint32_t row : rows_[t]) marked_[t][row] = 0;
    exchange_.add(*shards_[t], rows_[t]);
  }
  exchange_.fetch();
  // The model reads its whole-table copy (see ranker_parallel.hpp's limits): the fetched rows go there.
  for (size_t t = 0; t < tables_.size(); ++t) {
    ShardedTable& shard = *shards_[t];
    Parameter& table = *tables_[t];
    const size_t width = table.row_size;
    for (uint32_t row : rows_[t])
      std::copy_n(shard.cache().value.begin() + static_cast<long>(shard.slots()[row] * width), width,
                  table.value.begin() + static_cast<long>(row * width));
  }
}

void RankerParallel::sum_replicated_rows() {
  // The rows any rank touched, the same sorted list everywhere; their gradients summed in one all-reduce.
  std::vector<std::vector<uint32_t>> rows(tables_.size());
  size_t floats = 0;
  for (size_t t = 0; t < tables_.size(); ++t) {
    Parameter& table = *tables_[t];
    rows[t] = comm_.allgatherv<uint32_t>(table.touched);
    std::sort(rows[t].begin(), rows[t].end());
    rows[t].erase(std::unique(rows[t].begin(), rows[t].end()), rows[t].end());
    floats += rows[t].size() * table.row_size;
  }
  std::vector<float> buffer(floats);
  size_t at = 0;
  for (size_t t = 0; t < tables_.size(); ++t)
    for (uint32_t row : rows[t]) {
      const float* g = tables_[t]->grad.data() + size_t{row} * tables_[t]->row_size;
      at = static_cast<size_t>(std::copy_n(g, tables_[t]->row_size, buffer.begin() + static_cast<long>(at)) - buffer.begin());
    }
  comm_.allreduce_sum(buffer);
  at = 0;
  for (size_t t = 0; t < tables_.size(); ++t) {
    Parameter& table = *tables_[t];
    for (uint32_t row : rows[t]) {
      std::copy_n(buffer.begin() + static_cast<long>(at), table.row_size, table.grad.begin() + static_cast<long>(size_t{row} * table.row_size));
      at += table.row_size;
      table.touch(row);  // so that the optimiser steps a row another rank touched
    }
  }
}

float RankerParallel::reduce_gradients(float local_loss) {
  if (!distributed()) return local_loss;
  if (sharded()) {
    for (size_t t = 0; t < tables_.size(); ++t) {
      // The model accumulated into its whole-table copy: the touched rows go to the cache, then to the owners.
      Parameter& table = *tables_[t];
      ShardedTable& shard = *shards_[t];
      const size_t width = table.row_size;
      for (uint32_t row : table.touched) {
        float* g = table.grad.data() + size_t{row} * width;
        std::copy_n(g, width, shard.cache().grad.begin() + static_cast<long>(shard.slots()[row] * width));
        std::fill_n(g, width, 0.0f);
        table.is_touched[row] = 0;
      }
      table.touched.clear();
    }
    exchange_.push_gradients();  // every table at once
  } else {
    sum_replicated_rows();
  }
  // The dense gradients and the loss, summed in one call.
  dense_buffer_.clear();
  for (const Parameter* p : dense_) dense_buffer_.insert(dense_buffer_.end(), p->grad.begin(), p->grad.end());
  dense_buffer_.push_back(local_loss);
  comm_.allreduce_sum(dense_buffer_);
  size_t at = 0;
  for (Parameter* p : dense_) {
    std::copy_n(dense_buffer_.begin() + static_cast<long>(at), p->grad.size(), p->grad.begin());
    at += p->grad.size();
  }
  return dense_buffer_.back();
}

void RankerParallel::gather_tables() {
  for (size_t t = 0; t < shards_.size(); ++t) {
    const std::vector<float> full = shards_[t]->gather(0);
    if (comm_.rank() == 0) std::copy(full.begin(), full.end(), tables_[t]->value.begin());
  }
}

void RankerParallel::share(CtrMetrics& metrics) {
  if (distributed()) comm_.broadcast(metrics, 0);
}

uint64_t RankerParallel::table_bytes_sent() const {
  uint64_t bytes = 0;
  for (const auto& shard : shards_) bytes += shard->bytes_sent();
  return bytes;
}

}  // namespace funnel::train
