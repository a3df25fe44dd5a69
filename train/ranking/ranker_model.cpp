#include "train/ranking/ranker_model.hpp"

#include <algorithm>
#include <map>

#include "train/core/errors.hpp"

namespace funnel::train {

namespace {

int find_feature(const EntityTable& table, const std::string& name) {
  for (size_t f = 0; f < table.features.size(); ++f)
    if (table.features[f].def.name == name) return static_cast<int>(f);
  return -1;
}

}  // namespace

RankerModel::RankerModel(const Dataset& data, const RankerConfig& config) : data_(data), config_(config) {
  const auto table = [this](std::string name, std::vector<uint64_t> shape) {
    owned_.push_back(std::make_unique<Parameter>(std::move(name), std::move(shape)));
    Parameter* p = owned_.back().get();
    p->make_sparse(static_cast<size_t>(p->shape[1]));
    return p;
  };
  user_offset_ = static_cast<uint32_t>(feature_offset(data, data.users));
  const size_t item_offset = feature_offset(data, data.items);
  const uint32_t dim = config.embedding_dim;

  // Item columns: the candidate's features, then behaviour features the candidate lacks; the candidate and
  // the behaviours look a feature up in the same table.
  std::vector<std::string> candidate_names = config.item_features;
  if (candidate_names.empty())
    for (const FeatureColumn& column : data.items.features)
      if (column.def.kind == FeatureKind::kCategorical) candidate_names.push_back(column.def.name);
  if (candidate_names.empty()) throw ConfigError("ranking: the dataset's items have no categorical feature to rank with");
  const bool same_behaviours = config.behaviour_features == std::vector<std::string>{"*"};
  const std::vector<std::string>& behaviour_names = same_behaviours ? candidate_names : config.behaviour_features;
  for (size_t a = 0; a < behaviour_names.size(); ++a)
    for (size_t b = 0; b < a; ++b)
      if (behaviour_names[a] == behaviour_names[b]) throw ConfigError("ranking: behaviour feature '" + behaviour_names[a] + "' is listed twice");
  std::vector<std::string> item_names = candidate_names;
  for (const std::string& name : behaviour_names)
    if (std::find(item_names.begin(), item_names.end(), name) == item_names.end()) item_names.push_back(name);
  std::vector<int> item_source;
  for (const std::string& name : item_names) {
    const int f = find_feature(data.items, name);
    if (f < 0) throw ConfigError("ranking: item_features names '" + name + "', which is not an item feature of the dataset");
    if (data.items.features[f].def.kind != FeatureKind::kCategorical)
      throw ConfigError("ranking: item feature '" + name + "' must be categorical (one value per item)");
    if (std::find(item_source.begin(), item_source.end(), f) != item_source.end())
      throw ConfigError("ranking: item feature '" + name + "' is listed twice");
    item_source.push_back(f);
    item_column_features_.push_back(static_cast<uint32_t>(item_offset + f));
    item_tables_.push_back(table("ranking/item/" + name, {data.items.features[f].cardinality, dim}));
  }
  const size_t columns = item_source.size();
  for (size_t c = 0; c < candidate_names.size(); ++c) candidate_columns_.push_back(static_cast<uint32_t>(c));
  for (const std::string& name : behaviour_names)
    behaviour_columns_.push_back(static_cast<uint32_t>(std::find(item_names.begin(), item_names.end(), name) - item_names.begin()));
  item_ids_.resize(data.items.size() * columns);
  for (size_t row = 0; row < data.items.size(); ++row)
    for (size_t c = 0; c < columns; ++c) item_ids_[row * columns + c] = data.items.features[item_source[c]].ids_of(row)[0];

  for (const std::string& name : config.user_features) {
    const int f = find_feature(data.users, name);
    if (f < 0) throw ConfigError("ranking: user_features names '" + name + "', which is not a user feature of the dataset");
    if (data.users.features[f].def.kind == FeatureKind::kDense)
      throw ConfigError("ranking: user feature '" + name + "' is dense; the ranking stage takes categorical user features");
    user_rows_.push_back(static_cast<uint32_t>(f));
    user_features_.push_back(static_cast<uint32_t>(user_offset_ + f));
    user_tables_.push_back(table("ranking/user/" + name, {data.users.features[f].cardinality, dim}));
  }

  // Co-action pairs. Parameter independence (always): the co-action tables are separate from the
  // representation tables above. Combination independence: one induction table per pair rather than
  // per induction feature. Order independence: `orders` parameter blocks per induction row.
  std::vector<CoActionPair> pairs = coaction_pairs(config);
  if (config.model == "can" && pairs.empty())
    for (const std::string& name : item_names) pairs.push_back({name, name});
  std::map<std::string, Parameter*> induction_by_feature, feed_by_feature;
  for (size_t k = 0; k < pairs.size(); ++k) {
    const CoActionPair& pair = pairs[k];
    const std::string what = "ranking: co-action pair '" + pair.induction + ":" + pair.feed + "'";
    const auto column = std::find(candidate_names.begin(), candidate_names.end(), pair.induction);
    if (column == candidate_names.end()) throw ConfigError(what + ": the induction side must be one of the ranking's item features");
    CoActionView shape;
    shape.induction_column = static_cast<uint32_t>(column - candidate_names.begin());
    shape.feed_dim = config.coaction_feed_dim;
    shape.layer_sizes = config.coaction_layers;
    shape.bias = config.coaction_bias;
    shape.orders = config.coaction_orders;
    shape.order_independent = config.order_independence;
    uint32_t feed_cardinality = 0;
    if (const auto feed_column = std::find(behaviour_names.begin(), behaviour_names.end(), pair.feed); feed_column != behaviour_names.end()) {
      shape.feed_sequence = true;
      shape.feed = static_cast<uint32_t>(std::find(item_names.begin(), item_names.end(), pair.feed) - item_names.begin());
      feed_cardinality = data.items.features[item_source[shape.feed]].cardinality;
    } else if (const int f = find_feature(data.users, pair.feed); f >= 0) {
      if (data.users.features[f].def.kind != FeatureKind::kCategorical)
        throw ConfigError(what + ": a user feed must be a categorical user feature");
      shape.feed = static_cast<uint32_t>(user_offset_ + f);
      feed_cardinality = data.users.features[f].cardinality;
    } else {
      throw ConfigError(what + ": the feed must be a behaviour feature of the ranking (read along the behaviours) or a user feature");
    }
    const uint32_t induction_cardinality = data.items.features[item_source[shape.induction_column]].cardinality;
    const std::string induction_key = config.combination_independence ? std::to_string(k) + "/" + pair.induction : pair.induction;
    Parameter*& induction = induction_by_feature[induction_key];
    if (!induction) induction = table("ranking/coaction/induction/" + induction_key, {induction_cardinality, shape.induction_width()});
    Parameter*& feed = feed_by_feature[pair.feed];
    if (!feed) feed = table("ranking/coaction/feed/" + pair.feed, {feed_cardinality, shape.feed_dim});
    units_.emplace_back(shape);
    induction_tables_.push_back(induction);
    feed_tables_.push_back(feed);
    coaction_info_.push_back({static_cast<uint32_t>(item_column_features_[shape.induction_column]),
                              shape.feed_sequence ? item_column_features_[shape.feed] : shape.feed, induction, feed});
  }

  // The MLP.
  view_.item_columns = static_cast<uint32_t>(columns);
  view_.max_behaviours = config.max_history;
  rebuild_view();
  uint32_t width = view_.input_dim();
  std::vector<uint32_t> sizes = config.hidden;
  sizes.push_back(1);
  for (size_t l = 0; l < sizes.size(); ++l) {
    const std::string name = "ranking/dense" + std::to_string(l);
    const bool hidden = l + 1 < sizes.size();
    layers_.push_back(std::make_unique<Layer>(Layer{Parameter(name + "/weight", {sizes[l], width}), Parameter(name + "/bias", {sizes[l]}),
                                                    Parameter(name + "/alpha", {hidden ? sizes[l] : 0})}));
    width = sizes[l];
  }
  for (auto& layer : layers_) linears_.emplace_back(&layer->weight, &layer->bias);
  rebuild_view();

  describe_fields(item_names);
}

// The input's fields for feature masks (AutoFAS eq. 1): each user feature, each candidate feature and each
// behaviour feature is one field; a co-action output needs both of its sides.
void RankerModel::describe_fields(const std::vector<std::string>& item_names) {
  const Dataset& data = data_;
  const RankerConfig& config = config_;
  const uint32_t dim = config.embedding_dim;
  const size_t columns = view_.item_columns;
  const auto field = [this](std::string name) {
    field_names_.push_back(std::move(name));
    return static_cast<uint32_t>(field_names_.size() - 1);
  };
  size_t offset = 0;
  for (size_t k = 0; k < user_tables_.size(); ++k, offset += dim)
    spans_.push_back({offset, dim, {field("user:" + config.user_features[k])}});
  std::vector<uint32_t> candidate_field(columns, UINT32_MAX), behaviour_field(columns, UINT32_MAX);
  for (uint32_t c : candidate_columns_) {
    candidate_field[c] = field("candidate:" + item_names[c]);
    spans_.push_back({offset, dim, {candidate_field[c]}});
    offset += dim;
  }
  for (uint32_t c : behaviour_columns_) {
    behaviour_field[c] = field("behaviours:" + item_names[c]);
    spans_.push_back({offset, dim, {behaviour_field[c]}});
    offset += dim;
  }
  student_input_dim_ = offset;
  for (size_t k = 0; k < units_.size(); ++k) {
    const CoActionView& shape = units_[k].shape();
    uint32_t feed_field = UINT32_MAX;
    if (shape.feed_sequence) {
      feed_field = behaviour_field[shape.feed];
    } else {
      for (size_t u = 0; u < user_features_.size(); ++u)
        if (user_features_[u] == shape.feed) feed_field = static_cast<uint32_t>(u);
      // A user feed that is not also a user input is a field of its own.
      if (feed_field == UINT32_MAX) feed_field = field("user:" + data.users.features[shape.feed - user_offset_].def.name);
    }
    spans_.push_back({offset, shape.output_dim(), {candidate_field[shape.induction_column], feed_field}});
    offset += shape.output_dim();
  }
}

void RankerModel::set_field_masks(std::vector<float> masks) {
  if (!masks.empty() && masks.size() != field_names_.size())
    throw TrainingError("ranking: " + std::to_string(masks.size()) + " field masks for " + std::to_string(field_names_.size()) + " fields");
  field_masks_ = std::move(masks);
}

void RankerModel::rebuild_view() {
  view_.user_inputs.clear();
  for (size_t k = 0; k < user_tables_.size(); ++k)
    view_.user_inputs.push_back({user_features_[k], user_tables_[k]->value.data(), static_cast<uint32_t>(user_tables_[k]->shape[0]),
                                 config_.embedding_dim, Pooling::kMean});
  view_.item_inputs.clear();
  view_.behaviour_inputs.clear();
  const Pooling pooling = config_.pooling == "mean" ? Pooling::kMean : Pooling::kSum;
  const auto input = [&](uint32_t c) {
    return TowerInputView{c, item_tables_[c]->value.data(), static_cast<uint32_t>(item_tables_[c]->shape[0]), config_.embedding_dim, pooling};
  };
  for (uint32_t c : candidate_columns_) view_.item_inputs.push_back(input(c));
  for (uint32_t c : behaviour_columns_) view_.behaviour_inputs.push_back(input(c));
  view_.coactions.clear();
  for (size_t k = 0; k < units_.size(); ++k) {
    CoActionView unit = units_[k].shape();
    unit.induction_table = induction_tables_[k]->value.data();
    unit.feed_table = feed_tables_[k]->value.data();
    view_.coactions.push_back(std::move(unit));
  }
  view_.layers.clear();
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = *layers_[l];
    const bool hidden = l + 1 < layers_.size();
    view_.layers.push_back({layer.weight.value.data(), layer.bias.value.data(), static_cast<uint32_t>(layer.weight.shape[1]),
                            static_cast<uint32_t>(layer.weight.shape[0]), hidden ? Activation::kPRelu : Activation::kNone,
                            hidden ? layer.alpha.value.data() : nullptr});
  }
}

void RankerModel::init(Rng& rng) {
  for (auto& p : owned_) glorot_uniform(*p, rng);
  for (auto& layer : layers_) {
    glorot_uniform(layer->weight, rng);
    std::fill(layer->bias.value.begin(), layer->bias.value.end(), 0.0f);
    std::fill(layer->alpha.value.begin(), layer->alpha.value.end(), 0.1f);
  }
}

std::vector<Parameter*> RankerModel::parameters() {
  std::vector<Parameter*> out;
  for (auto& p : owned_) out.push_back(p.get());
  for (auto& layer : layers_) {
    out.push_back(&layer->weight);
    out.push_back(&layer->bias);
    if (!layer->alpha.value.empty()) out.push_back(&layer->alpha);
  }
  return out;
}

size_t RankerModel::parameter_count() const {
  size_t n = 0;
  for (const auto& p : owned_) n += p->size();
  for (const auto& layer : layers_) n += layer->weight.size() + layer->bias.size() + layer->alpha.size();
  return n;
}

std::span<const uint32_t> RankerModel::history_of(uint32_t history) const {
  const uint32_t begin = instances_->history_offsets[history], end = instances_->history_offsets[history + 1];
  const uint32_t kept = std::min(end - begin, config_.max_history);
  return {instances_->history_items.data() + end - kept, kept};
}

void RankerModel::forward(const CtrInstances& instances, const CtrSplit& split, std::span<const uint32_t> batch, float* logits) {
  instances_ = &instances;
  split_ = &split;
  batch_.assign(batch.begin(), batch.end());
  const size_t n = batch.size();
  const size_t width = view_.input_dim();
  const size_t columns = view_.item_columns;
  inputs_.assign(n * width, 0.0f);
  coaction_cache_.resize(units_.size());
  for (size_t k = 0; k < units_.size(); ++k) coaction_cache_[k].resize(n * units_[k].cache_size(config_.max_history));

#pragma omp parallel
  {
    std::vector<float> feed;
#pragma omp for schedule(dynamic, 8)
    for (size_t b = 0; b < n; ++b) {
      const uint32_t i = batch[b];
      const uint32_t user = split.user[i], target = split.target[i];
      const std::span<const uint32_t> history = history_of(split.history[i]);
      float* row = inputs_.data() + b * width;
      size_t offset = 0;
      for (size_t k = 0; k < user_tables_.size(); ++k) {
        const auto ids = data_.users.features[user_rows_[k]].ids_of(user);
        const float inv = 1.0f / static_cast<float>(ids.size());
        for (uint32_t id : ids)
          for (uint32_t d = 0; d < config_.embedding_dim; ++d) row[offset + d] += inv * user_tables_[k]->value[id * config_.embedding_dim + d];
        offset += config_.embedding_dim;
      }
      for (uint32_t c : candidate_columns_) {
        const float* e = item_tables_[c]->value.data() + size_t{item_ids_[target * columns + c]} * config_.embedding_dim;
        std::copy(e, e + config_.embedding_dim, row + offset);
        offset += config_.embedding_dim;
      }
      const float scale = config_.pooling == "mean" && history.size() > 1 ? 1.0f / static_cast<float>(history.size()) : 1.0f;
      for (uint32_t c : behaviour_columns_) {
        for (uint32_t h : history) {
          const float* e = item_tables_[c]->value.data() + size_t{item_ids_[h * columns + c]} * config_.embedding_dim;
          for (uint32_t d = 0; d < config_.embedding_dim; ++d) row[offset + d] += e[d];
        }
        for (uint32_t d = 0; d < config_.embedding_dim; ++d) row[offset + d] *= scale;
        offset += config_.embedding_dim;
      }
      for (size_t k = 0; k < units_.size(); ++k) {
        const CoActionView& shape = units_[k].shape();
        const size_t rows = shape.feed_sequence ? history.size() : 1;
        feed.resize(rows * shape.feed_dim);
        for (size_t r = 0; r < rows; ++r) {
          const uint32_t id = shape.feed_sequence ? item_ids_[history[r] * columns + shape.feed]
                                                  : data_.users.features[shape.feed - user_offset_].ids_of(user)[0];
          const float* e = feed_tables_[k]->value.data() + size_t{id} * shape.feed_dim;
          std::copy(e, e + shape.feed_dim, feed.data() + r * shape.feed_dim);
        }
        const uint32_t induction = item_ids_[target * columns + shape.induction_column];
        units_[k].forward(induction_tables_[k]->value.data() + size_t{induction} * shape.induction_width(), feed.data(), rows,
                          coaction_cache_[k].data() + b * units_[k].cache_size(config_.max_history), row + offset);
        offset += shape.output_dim();
      }
    }
  }

  // Feature masks: the raw input is kept for the masks' gradient (straight through: d loss / d m).
  if (!field_masks_.empty()) {
    raw_inputs_ = inputs_;
    for (const InputSpan& span : spans_) {
      float scale = 1.0f;
      for (uint32_t f : span.fields) scale *= field_masks_[f];
      if (scale == 1.0f) continue;
      for (size_t b = 0; b < n; ++b)
        for (size_t d = 0; d < span.width; ++d) inputs_[b * width + span.offset + d] *= scale;
    }
  }

  pre_.resize(layers_.size());
  post_.resize(layers_.size());
  const float* x = inputs_.data();
  for (size_t l = 0; l < layers_.size(); ++l) {
    const size_t out = linears_[l].out();
    pre_[l].resize(n * out);
    linears_[l].forward(x, n, pre_[l].data());
    if (l + 1 == layers_.size()) break;
    post_[l].resize(n * out);
    prelu_forward(pre_[l].data(), n, out, layers_[l]->alpha.value.data(), post_[l].data());
    x = post_[l].data();
  }
  std::copy(pre_.back().begin(), pre_.back().end(), logits);
}

void RankerModel::backward(std::span<const float> dlogits, bool update_parameters) {
  const size_t n = batch_.size();
  const size_t width = view_.input_dim();
  const size_t columns = view_.item_columns;
  const uint32_t dim = config_.embedding_dim;

  grad_a_.assign(dlogits.begin(), dlogits.end());
  for (size_t l = layers_.size(); l-- > 0;) {
    const size_t in = linears_[l].in();
    if (l + 1 < layers_.size()) {
      // grad_a_ holds d loss / d post_[l]; through PReLU to d loss / d pre_[l].
      grad_b_.resize(grad_a_.size());
      prelu_backward(pre_[l].data(), grad_a_.data(), n, linears_[l].out(), layers_[l]->alpha.value.data(), grad_b_.data(),
                     layers_[l]->alpha.grad.data());
      std::swap(grad_a_, grad_b_);
    }
    const float* x = l == 0 ? inputs_.data() : post_[l - 1].data();
    grad_b_.resize(n * in);
    linears_[l].backward(x, grad_a_.data(), n, grad_b_.data());
    std::swap(grad_a_, grad_b_);
  }
  std::vector<float>& dx = grad_a_;  // [n, width]

  if (!field_masks_.empty()) {
    // d loss / d m_f = sum over f's spans of <d loss / d masked input, raw input> times the span's other
    // masks; the embeddings below see the masked gradient.
    field_gradients_.assign(field_names_.size(), 0.0);
    for (const InputSpan& span : spans_) {
      double inner = 0.0;
      float scale = 1.0f;
      for (uint32_t f : span.fields) scale *= field_masks_[f];
      for (size_t b = 0; b < n; ++b)
        for (size_t d = 0; d < span.width; ++d) {
          const size_t i = b * width + span.offset + d;
          inner += static_cast<double>(dx[i]) * raw_inputs_[i];
          dx[i] *= scale;
        }
      for (size_t a = 0; a < span.fields.size(); ++a) {
        double others = 1.0;
        for (size_t o = 0; o < span.fields.size(); ++o)
          if (o != a) others *= field_masks_[span.fields[o]];
        field_gradients_[span.fields[a]] += inner * others;
      }
    }
  }
  if (!update_parameters) return;

  // Co-action gradients per instance, in parallel; the scatter into shared rows comes after, in order.
  const size_t coaction_offset = student_input_dim_;
  dinduction_.resize(units_.size());
  dfeed_.resize(units_.size());
  for (size_t k = 0; k < units_.size(); ++k) {
    dinduction_[k].assign(n * units_[k].shape().induction_width(), 0.0f);
    dfeed_[k].assign(n * config_.max_history * units_[k].shape().feed_dim, 0.0f);
  }
#pragma omp parallel
  {
    std::vector<float> scratch;
#pragma omp for schedule(dynamic, 8)
    for (size_t b = 0; b < n; ++b) {
      const uint32_t i = batch_[b];
      const size_t history = history_of(split_->history[i]).size();
      size_t offset = coaction_offset;
      for (size_t k = 0; k < units_.size(); ++k) {
        const CoActionView& shape = units_[k].shape();
        const size_t rows = shape.feed_sequence ? history : 1;
        scratch.resize(units_[k].scratch_size(rows));
        const uint32_t induction = item_ids_[split_->target[i] * columns + shape.induction_column];
        units_[k].backward(induction_tables_[k]->value.data() + size_t{induction} * shape.induction_width(), rows,
                           coaction_cache_[k].data() + b * units_[k].cache_size(config_.max_history), dx.data() + b * width + offset,
                           scratch.data(), dinduction_[k].data() + b * shape.induction_width(),
                           dfeed_[k].data() + b * config_.max_history * shape.feed_dim);
        offset += shape.output_dim();
      }
    }
  }

  const auto add_row = [](Parameter& table, uint32_t id, const float* g, size_t size, float scale) {
    float* row = table.grad.data() + size_t{id} * size;
    for (size_t d = 0; d < size; ++d) row[d] += scale * g[d];
    table.touch(id);
  };
  for (size_t b = 0; b < n; ++b) {
    const uint32_t i = batch_[b];
    const uint32_t user = split_->user[i], target = split_->target[i];
    const std::span<const uint32_t> history = history_of(split_->history[i]);
    const float* g = dx.data() + b * width;
    for (size_t k = 0; k < user_tables_.size(); ++k) {
      const auto ids = data_.users.features[user_rows_[k]].ids_of(user);
      for (uint32_t id : ids) add_row(*user_tables_[k], id, g, dim, 1.0f / static_cast<float>(ids.size()));
      g += dim;
    }
    for (uint32_t c : candidate_columns_) {
      add_row(*item_tables_[c], item_ids_[target * columns + c], g, dim, 1.0f);
      g += dim;
    }
    const float scale = config_.pooling == "mean" && history.size() > 1 ? 1.0f / static_cast<float>(history.size()) : 1.0f;
    for (uint32_t c : behaviour_columns_) {
      for (uint32_t h : history) add_row(*item_tables_[c], item_ids_[h * columns + c], g, dim, scale);
      g += dim;
    }
    for (size_t k = 0; k < units_.size(); ++k) {
      const CoActionView& shape = units_[k].shape();
      add_row(*induction_tables_[k], item_ids_[target * columns + shape.induction_column],
              dinduction_[k].data() + b * shape.induction_width(), shape.induction_width(), 1.0f);
      const float* dfeed = dfeed_[k].data() + b * config_.max_history * shape.feed_dim;
      if (shape.feed_sequence) {
        for (size_t r = 0; r < history.size(); ++r)
          add_row(*feed_tables_[k], item_ids_[history[r] * columns + shape.feed], dfeed + r * shape.feed_dim, shape.feed_dim, 1.0f);
      } else {
        const uint32_t id = data_.users.features[shape.feed - user_offset_].ids_of(user)[0];
        add_row(*feed_tables_[k], id, dfeed, shape.feed_dim, 1.0f);
      }
    }
  }
}

}  // namespace funnel::train
