#include "train/ranking/ranker_parallel.hpp"

#include <algorithm>
#include <unordered_map>

#include "train/data/ctr_data.hpp"
#include "train/distributed/gradient_allreduce.hpp"
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
    // Each rank draws its own rows, as the whole table has them (rows drawn per row: RankerModel::init_rows).
    shards_.push_back(std::make_unique<ShardedTable>(comm, p->name, static_cast<uint32_t>(p->shape[0]), p->row_size));
    model.init_rows(*p, shards_.back()->owned(), shards_.back()->shard().value.data());
    optimised_.push_back(&shards_.back()->shard());
    // The model reads and writes the batch's rows in the shard's cache; the whole table's floats go (the
    // Parameter keeps its name and shape for rank 0's gather and the export).
    model.bind_rows(p, &shards_.back()->cache(), &shards_.back()->slots());
    release(*p);
  }
  model.refresh_view();
  rows_.resize(tables_.size());
  for (const Parameter* p : tables_) marked_.emplace_back(shard ? p->shape[0] : 0, 0);
}

RankerParallel::~RankerParallel() {
  if (!sharded()) return;
  for (Parameter* table : tables_) model_.bind_rows(table, nullptr, nullptr);
  model_.refresh_view();
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

void RankerParallel::release(Parameter& table) {
  std::vector<float>().swap(table.value);
  std::vector<float>().swap(table.grad);
  std::vector<uint8_t>().swap(table.is_touched);
  table.touched.clear();
}

void RankerParallel::fetch_rows(std::span<const uint32_t> batch) {
  if (!sharded()) return;
  if (gathered_) {
    // Rank 0's whole tables, gathered for the export, are not read by training: free them.
    for (Parameter* table : tables_) release(*table);
    model_.refresh_view();
    gathered_ = false;
  }
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
  exchange_.fetch();  // into the caches the model is bound to
}

float RankerParallel::reduce_gradients(float local_loss) {
  if (!distributed()) return local_loss;
  if (sharded()) exchange_.push_gradients();  // the caches' gradients to the owners, every table at once
  // The dense gradients, the replicated tables' touched rows (none when sharded) and the loss: one all-reduce.
  float loss = local_loss;
  allreduce_touched_gradients(comm_, dense_, sharded() ? std::span<Parameter* const>() : std::span<Parameter* const>(tables_),
                              std::span<float>(&loss, 1), dense_buffer_);
  return loss;
}

void RankerParallel::gather_tables() {
  if (!sharded()) return;
  for (size_t t = 0; t < shards_.size(); ++t) {
    std::vector<float> full = shards_[t]->gather(0);
    if (comm_.rank() == 0) tables_[t]->value = std::move(full);
  }
  model_.refresh_view();  // over the new arrays (rank 0) or none
  gathered_ = comm_.rank() == 0;
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
