#include "train/retrieval/tower_net.hpp"

#include <algorithm>
#include <numeric>

namespace funnel::train {

Parameter* TowerNet::own(std::string name, std::vector<uint64_t> shape) {
  storage_.push_back(std::make_unique<Parameter>(std::move(name), std::move(shape)));
  return storage_.back().get();
}

void TowerNet::add_linear(const std::string& name, size_t in, size_t out, Rng& rng) {
  Parameter* w = own(name + "/weight", {out, in});
  Parameter* b = own(name + "/bias", {out});
  linears_.emplace_back(w, b);
  linears_.back().init(rng);
}

Parameter* TowerNet::own_embedding(std::string name, uint64_t rows, uint32_t dim, size_t feature, Rng& rng) {
  if (!comm_) {
    Parameter* p = own(std::move(name), {rows, dim});
    p->make_sparse(dim);
    for (float& x : p->value) x = static_cast<float>(rng.normal());
    return p;
  }
  // No arrays: the Parameter is made empty, then given the whole table's shape (its name and shape serve the
  // export's gather_tables).
  Parameter* p = own(name, {0, dim});
  p->shape = {rows, dim};
  p->make_sparse(dim);
  auto shard = std::make_unique<ShardedTable>(*comm_, std::move(name), static_cast<uint32_t>(rows), dim);
  const std::vector<uint32_t>& owned = shard->owned();  // ascending
  float* kept = shard->shard().value.data();
  size_t next = 0;
  for (uint64_t row = 0; row < rows; ++row) {
    const bool mine = next < owned.size() && owned[next] == row;
    for (uint32_t d = 0; d < dim; ++d) {
      const float x = static_cast<float>(rng.normal());
      if (mine) kept[next * dim + d] = x;
    }
    next += mine ? 1 : 0;
  }
  shards_[feature] = std::move(shard);
  return p;
}

TowerNet::TowerNet(const EntityTable& table, size_t first_feature, const TrainConfig& config, const std::string& prefix,
                   Rng& rng, bool default_inputs, Communicator* shard_over)
    : table_(table), first_feature_(first_feature), comm_(shard_over) {
  if (comm_) shards_.resize(table.features.size());
  for (const FeatureColumn& column : table.features) {
    if (column.def.kind == FeatureKind::kDense) {
      embeddings_.push_back(nullptr);
      input_dim_ += 1;
      continue;
    }
    const size_t f = embeddings_.size();
    Parameter* p = own_embedding(prefix + "/embedding/" + column.def.name, column.cardinality, config.embedding_dim, f, rng);
    embeddings_.push_back(p);
    bags_.emplace_back(p, /*mean_pooling=*/true);
    if (comm_) bags_.back().bind(&shards_[f]->cache(), &shards_[f]->slots());
    input_dim_ += config.embedding_dim;
  }
  std::vector<uint32_t> widths = config.hidden;
  widths.push_back(config.output_dim);
  size_t in = input_dim_;
  for (size_t l = 0; l < widths.size(); ++l) {
    add_linear(prefix + "/dense" + std::to_string(l), in, widths[l], rng);
    in = widths[l];
  }
  if (default_inputs)
    for (size_t f = 0; f < table.features.size(); ++f) {
      // Drawn as the feature's own embedding rows are: the default starts as one more value of the feature.
      Parameter* d = own(prefix + "/default/" + table.features[f].def.name, {embeddings_[f] ? config.embedding_dim : 1u});
      if (embeddings_[f])
        for (float& x : d->value) x = static_cast<float>(rng.normal());
      defaults_.push_back(d);
    }
}

TowerNet::TowerNet(const TowerNet& base, size_t shared_layers, const std::string& prefix, Rng& rng)
    : table_(base.table_),
      first_feature_(base.first_feature_),
      embeddings_(base.embeddings_),
      defaults_(base.defaults_),
      bags_(base.bags_),
      linears_(base.linears_.begin(), base.linears_.begin() + static_cast<long>(std::min(shared_layers, base.linears_.size()))),
      input_dim_(base.input_dim_) {
  for (size_t l = linears_.size(); l < base.linears_.size(); ++l)
    add_linear(prefix + "/dense" + std::to_string(l), base.linears_[l].in(), base.linears_[l].out(), rng);
}

const float* TowerNet::forward(std::span<const uint32_t> rows) { return forward(pass_, rows, nullptr); }

void TowerNet::backward(const float* d_output) { backward(pass_, d_output); }

const float* TowerNet::forward(TowerPass& pass, std::span<const uint32_t> rows, const TowerAugmentation* augmentation) {
  pass.rows.assign(rows.begin(), rows.end());
  pass.augmentation = augmentation;
  const size_t batch = rows.size();
  pass.positions.resize(batch);
  std::iota(pass.positions.begin(), pass.positions.end(), 0u);
  pass.activations.resize(linears_.size() + 1);
  auto& input = pass.activations[0];
  input.assign(batch * input_dim_, 0.0f);
  size_t column = 0, bag = 0;
  for (size_t f = 0; f < table_.features.size(); ++f) {
    const FeatureColumn& feature = table_.features[f];
    const bool masked = augmentation && augmentation->masked[f];
    const size_t width = embeddings_[f] ? bags_[bag].dim() : 1;
    if (masked) {
      const float* value = defaults_.at(f)->value.data();
      for (size_t b = 0; b < batch; ++b) std::copy(value, value + width, input.data() + b * input_dim_ + column);
    } else if (!embeddings_[f]) {
      for (size_t b = 0; b < batch; ++b) input[b * input_dim_ + column] = feature.dense[rows[b]];
    } else if (augmentation && !augmentation->offsets[f].empty()) {
      bags_[bag].forward(IdLists(augmentation->offsets[f].data(), augmentation->ids[f].data(), pass.positions), input.data(),
                         input_dim_, column);
    } else {
      bags_[bag].forward(feature.lists(rows), input.data(), input_dim_, column);
    }
    column += width;
    bag += embeddings_[f] != nullptr;
  }
  for (size_t l = 0; l < linears_.size(); ++l) {
    auto& next = pass.activations[l + 1];
    next.resize(batch * linears_[l].out());
    linears_[l].forward(pass.activations[l].data(), batch, next.data());
    if (l + 1 < linears_.size()) relu_forward(next.data(), next.size(), next.data());
  }
  pass.output.resize(batch * output_dim());
  l2_normalize_forward(pass.activations.back().data(), batch, output_dim(), pass.output.data());
  return pass.output.data();
}

void TowerNet::backward(TowerPass& pass, const float* d_output) {
  const size_t batch = pass.rows.size();
  const TowerAugmentation* augmentation = pass.augmentation;
  grad_a_.resize(batch * output_dim());
  l2_normalize_backward(pass.activations.back().data(), pass.output.data(), d_output, batch, output_dim(), grad_a_.data());
  for (size_t l = linears_.size(); l-- > 0;) {
    if (l + 1 < linears_.size())
      relu_backward(pass.activations[l + 1].data(), grad_a_.data(), grad_a_.size(), grad_a_.data());
    grad_b_.resize(batch * linears_[l].in());
    linears_[l].backward(pass.activations[l].data(), grad_a_.data(), batch, grad_b_.data());
    std::swap(grad_a_, grad_b_);
  }
  size_t column = 0, bag = 0;
  for (size_t f = 0; f < table_.features.size(); ++f) {
    const size_t width = embeddings_[f] ? bags_[bag].dim() : 1;
    if (augmentation && augmentation->masked[f]) {
      float* grad = defaults_.at(f)->grad.data();
      for (size_t b = 0; b < batch; ++b)
        for (size_t k = 0; k < width; ++k) grad[k] += grad_a_[b * input_dim_ + column + k];
    } else if (!embeddings_[f]) {
      // A dense input has no parameter.
    } else if (augmentation && !augmentation->offsets[f].empty()) {
      bags_[bag].backward(IdLists(augmentation->offsets[f].data(), augmentation->ids[f].data(), pass.positions), grad_a_.data(),
                          input_dim_, column);
    } else {
      bags_[bag].backward(table_.features[f].lists(pass.rows), grad_a_.data(), input_dim_, column);
    }
    column += width;
    bag += embeddings_[f] != nullptr;
  }
}

std::vector<Parameter*> TowerNet::parameters() {
  std::vector<Parameter*> out;
  for (auto& p : storage_) {
    Parameter* listed = p.get();
    for (size_t f = 0; f < shards_.size(); ++f)
      if (shards_[f] && embeddings_[f] == p.get()) listed = &shards_[f]->shard();
    out.push_back(listed);
  }
  return out;
}

bool TowerNet::is_shard(const Parameter* p) const {
  for (const auto& shard : shards_)
    if (shard && &shard->shard() == p) return true;
  return false;
}

size_t TowerNet::whole_rows(const Parameter* p) const {
  for (const auto& shard : shards_)
    if (shard && &shard->shard() == p) return shard->rows();
  for (const auto& own : storage_)
    if (own.get() == p && p->sparse) return p->size() / p->row_size;
  return 0;
}

void TowerNet::stage_rows(RowExchange& exchange, std::span<const uint32_t> rows) {
  std::vector<uint32_t> ids;
  for (size_t f = 0; f < shards_.size(); ++f) {
    if (!shards_[f]) continue;
    ids.clear();
    const IdLists lists = table_.features[f].lists(rows);
    for (size_t b = 0; b < lists.size(); ++b)
      for (uint32_t id : lists[b]) ids.push_back(id);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    exchange.add(*shards_[f], ids);
  }
}

void TowerNet::fetch_rows(std::span<const uint32_t> rows) {
  if (!sharded()) return;
  RowExchange exchange(*comm_);
  stage_rows(exchange, rows);
  exchange.fetch();
}

void TowerNet::gather_tables(int root) {
  for (size_t f = 0; f < shards_.size(); ++f)
    if (shards_[f]) embeddings_[f]->value = shards_[f]->gather(root);
}

uint64_t TowerNet::bytes_sent() const {
  uint64_t bytes = 0;
  for (const auto& shard : shards_)
    if (shard) bytes += shard->bytes_sent();
  return bytes;
}

TowerView TowerNet::view() const {
  TowerView view;
  for (size_t f = 0; f < table_.features.size(); ++f) {
    TowerInputView input;
    input.feature = static_cast<uint32_t>(first_feature_ + f);
    if (const Parameter* table = embeddings_[f]) {
      input.table = table->value.data();
      input.rows = static_cast<uint32_t>(table->shape[0]);
      input.dim = static_cast<uint32_t>(table->shape[1]);
      input.pooling = Pooling::kMean;
    }
    view.inputs.push_back(input);
  }
  for (size_t l = 0; l < linears_.size(); ++l) {
    const Linear& linear = linears_[l];
    view.layers.push_back({linear.weight().value.data(), linear.bias().value.data(), static_cast<uint32_t>(linear.in()),
                           static_cast<uint32_t>(linear.out()), l + 1 < linears_.size() ? Activation::kRelu : Activation::kNone});
  }
  view.l2_normalize = true;
  return view;
}

}  // namespace funnel::train
