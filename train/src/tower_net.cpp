#include "tower_net.hpp"

namespace funnel::train {

TowerNet::TowerNet(const EntityTable& table, size_t first_feature, const TrainConfig& config, const std::string& prefix,
                   Rng& rng)
    : table_(table), first_feature_(first_feature) {
  for (const FeatureColumn& column : table.features) {
    if (column.def.kind == FeatureKind::kDense) {
      embeddings_.push_back(nullptr);
      input_dim_ += 1;
      continue;
    }
    storage_.push_back(std::make_unique<Parameter>(prefix + "/embedding/" + column.def.name,
                                                   std::vector<uint64_t>{column.cardinality, config.embedding_dim}));
    Parameter* p = storage_.back().get();
    p->make_sparse(config.embedding_dim);
    // PyTorch's nn.Embedding default, N(0, 1), as the reference uses.
    for (float& x : p->value) x = static_cast<float>(rng.normal());
    embeddings_.push_back(p);
    bags_.emplace_back(p, /*mean_pooling=*/true);
    input_dim_ += config.embedding_dim;
  }
  std::vector<uint32_t> widths = config.hidden;
  widths.push_back(config.output_dim);
  size_t in = input_dim_;
  for (size_t l = 0; l < widths.size(); ++l) {
    storage_.push_back(std::make_unique<Parameter>(prefix + "/dense" + std::to_string(l) + "/weight",
                                                   std::vector<uint64_t>{widths[l], in}));
    Parameter* w = storage_.back().get();
    storage_.push_back(std::make_unique<Parameter>(prefix + "/dense" + std::to_string(l) + "/bias", std::vector<uint64_t>{widths[l]}));
    Parameter* b = storage_.back().get();
    linears_.emplace_back(w, b);
    linears_.back().init(rng);
    in = widths[l];
  }
}

const float* TowerNet::forward(std::span<const uint32_t> rows) {
  rows_.assign(rows.begin(), rows.end());
  const size_t batch = rows.size();
  activations_.resize(linears_.size() + 1);
  auto& input = activations_[0];
  input.assign(batch * input_dim_, 0.0f);
  size_t column = 0, bag = 0;
  for (size_t f = 0; f < table_.features.size(); ++f) {
    const FeatureColumn& feature = table_.features[f];
    if (!embeddings_[f]) {
      for (size_t b = 0; b < batch; ++b) input[b * input_dim_ + column] = feature.dense[rows[b]];
      column += 1;
      continue;
    }
    bags_[bag].forward(feature, rows, input.data(), input_dim_, column);
    column += bags_[bag++].dim();
  }
  for (size_t l = 0; l < linears_.size(); ++l) {
    auto& next = activations_[l + 1];
    next.resize(batch * linears_[l].out());
    linears_[l].forward(activations_[l].data(), batch, next.data());
    if (l + 1 < linears_.size()) relu_forward(next.data(), next.size(), next.data());
  }
  output_.resize(batch * output_dim());
  l2_normalize_forward(activations_.back().data(), batch, output_dim(), output_.data());
  return output_.data();
}

void TowerNet::backward(const float* d_output) {
  const size_t batch = rows_.size();
  grad_a_.resize(batch * output_dim());
  l2_normalize_backward(activations_.back().data(), output_.data(), d_output, batch, output_dim(), grad_a_.data());
  for (size_t l = linears_.size(); l-- > 0;) {
    if (l + 1 < linears_.size()) relu_backward(activations_[l + 1].data(), grad_a_.data(), grad_a_.size(), grad_a_.data());
    grad_b_.resize(batch * linears_[l].in());
    linears_[l].backward(activations_[l].data(), grad_a_.data(), batch, grad_b_.data());
    std::swap(grad_a_, grad_b_);
  }
  size_t column = 0, bag = 0;
  for (size_t f = 0; f < table_.features.size(); ++f) {
    if (!embeddings_[f]) {
      column += 1;
      continue;
    }
    bags_[bag].backward(table_.features[f], rows_, grad_a_.data(), input_dim_, column);
    column += bags_[bag++].dim();
  }
}

std::vector<Parameter*> TowerNet::parameters() {
  std::vector<Parameter*> out;
  for (auto& p : storage_) out.push_back(p.get());
  return out;
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
