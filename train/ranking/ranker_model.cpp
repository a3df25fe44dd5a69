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

RankerModel::RankerModel(const Dataset& data, const RankerConfig& config, bool whole_tables)
    : data_(data), config_(config), whole_tables_(whole_tables) {
  const auto table = [this](std::string name, std::vector<uint64_t> shape) { return sparse_table(std::move(name), std::move(shape)); };
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
  // The co-action pairs (by default every item feature with its own behaviour sequence) and the micro-MLP's
  // shape, which every pair shares.
  std::vector<CoActionPair> pairs = coaction_pairs(config);
  if (config.model == "can" && pairs.empty())
    for (const std::string& name : item_names) pairs.push_back({name, name});
  CoActionView unit_shape;
  unit_shape.feed_dim = config.coaction_feed_dim;
  unit_shape.layer_sizes = config.coaction_layers;
  unit_shape.bias = config.coaction_bias;
  unit_shape.orders = config.coaction_orders;
  unit_shape.order_independent = config.order_independence;
  // Without parameter independence an induction feature's one embedding is the micro-MLP's parameters
  // (P_induction, eq. 5-9), so it is as wide as they are, for the candidate and the behaviours alike.
  const auto width_of = [&](const std::string& name) {
    if (config.parameter_independence) return dim;
    for (const CoActionPair& pair : pairs)
      if (pair.induction == name) return unit_shape.induction_width();
    return dim;
  };
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
    item_dims_.push_back(width_of(name));
    item_tables_.push_back(table("ranking/item/" + name, {data.items.features[f].cardinality, item_dims_.back()}));
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

  wire_coaction(pairs, unit_shape, {candidate_names, behaviour_names, item_names, item_source});

  // The MLP.
  view_.item_columns = static_cast<uint32_t>(columns);
  view_.max_behaviours = config.max_history;
  rebuild_view();
  // The MLP's input width from the model's structure (the view's counts a table without values as 1 wide).
  input_dim_ = user_tables_.size() * config.embedding_dim;
  for (uint32_t c : candidate_columns_) input_dim_ += item_dims_[c];
  for (uint32_t c : behaviour_columns_) input_dim_ += item_dims_[c];
  for (const CoActionUnit& unit : units_) input_dim_ += unit.shape().output_dim();
  uint32_t width = static_cast<uint32_t>(input_dim_);
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

Parameter* RankerModel::sparse_table(std::string name, std::vector<uint64_t> shape) {
  // Without whole tables the arrays are never allocated: the Parameter is made empty, then given its shape.
  owned_.push_back(std::make_unique<Parameter>(std::move(name), whole_tables_ ? shape : std::vector<uint64_t>{0, shape.at(1)}));
  bindings_.emplace_back();
  Parameter* p = owned_.back().get();
  p->shape = std::move(shape);
  p->make_sparse(static_cast<size_t>(p->shape[1]));
  return p;
}

void RankerModel::wire_coaction(const std::vector<CoActionPair>& pairs, const CoActionView& unit_shape, const ItemColumns& columns) {
  const Dataset& data = data_;
  const RankerConfig& config = config_;
  // Co-action pairs and the three independence levels (section 3.3). Parameter independence: the
  // co-action tables are separate from the representation tables above; without it the pair reads the
  // features' own embeddings. Combination independence: one induction table and one feed table per pair
  // rather than per feature. Order independence: `orders` parameter blocks per induction row (unit_shape).
  std::map<std::string, Parameter*> induction_by_key, feed_by_key;
  for (size_t k = 0; k < pairs.size(); ++k) {
    const CoActionPair& pair = pairs[k];
    const std::string what = "ranking: co-action pair '" + pair.induction + ":" + pair.feed + "'";
    const auto column = std::find(columns.candidates.begin(), columns.candidates.end(), pair.induction);
    if (column == columns.candidates.end()) throw ConfigError(what + ": the induction side must be one of the ranking's item features");
    CoActionView shape = unit_shape;
    shape.induction_column = static_cast<uint32_t>(column - columns.candidates.begin());
    uint32_t feed_cardinality = 0;
    Parameter* own_feed = nullptr;  // the feed feature's representation table
    if (const auto feed_column = std::find(columns.behaviours.begin(), columns.behaviours.end(), pair.feed); feed_column != columns.behaviours.end()) {
      shape.feed_sequence = true;
      shape.feed = static_cast<uint32_t>(std::find(columns.all.begin(), columns.all.end(), pair.feed) - columns.all.begin());
      feed_cardinality = data.items.features[columns.source[shape.feed]].cardinality;
      own_feed = item_tables_[shape.feed];
    } else if (const int f = find_feature(data.users, pair.feed); f >= 0) {
      if (data.users.features[f].def.kind != FeatureKind::kCategorical)
        throw ConfigError(what + ": a user feed must be a categorical user feature");
      shape.feed = static_cast<uint32_t>(user_offset_ + f);
      feed_cardinality = data.users.features[f].cardinality;
      for (size_t u = 0; u < user_features_.size(); ++u)
        if (user_features_[u] == shape.feed) own_feed = user_tables_[u];
    } else {
      throw ConfigError(what + ": the feed must be a behaviour feature of the ranking (read along the behaviours) or a user feature");
    }
    Parameter* induction = nullptr;
    Parameter* feed = nullptr;
    if (config.parameter_independence) {
      const uint32_t induction_cardinality = data.items.features[columns.source[shape.induction_column]].cardinality;
      const std::string prefix = config.combination_independence ? std::to_string(k) + "/" : "";
      Parameter*& shared_induction = induction_by_key[prefix + pair.induction];
      if (!shared_induction)
        shared_induction = sparse_table("ranking/coaction/induction/" + prefix + pair.induction, {induction_cardinality, shape.induction_width()});
      Parameter*& shared_feed = feed_by_key[prefix + pair.feed];
      if (!shared_feed) shared_feed = sparse_table("ranking/coaction/feed/" + prefix + pair.feed, {feed_cardinality, shape.feed_dim});
      induction = shared_induction;
      feed = shared_feed;
    } else {
      // The paper's ablation: P_induction is the induction feature's embedding (sized to the micro-MLP by
      // width_of above) and P_feed the feed feature's embedding. A feed wider than the micro-MLP's input
      // (a feature that is also an induction feature, or embedding_dim > coaction_feed_dim) feeds its first
      // coaction_feed_dim values: one embedding per feature has to serve both widths, and a prefix keeps
      // the rest of it for representation alone.
      induction = item_tables_[shape.induction_column];
      if (!own_feed)
        throw ConfigError(what + ": without parameter_independence a user feed reads the feature's own embedding, so '" + pair.feed +
                          "' must be one of user_features");
      if (own_feed->shape[1] < shape.feed_dim)
        throw ConfigError(what + ": without parameter_independence the feed is the first coaction_feed_dim (" + std::to_string(shape.feed_dim) +
                          ") values of the embedding of '" + pair.feed + "', which has only " + std::to_string(own_feed->shape[1]) +
                          " (embedding_dim)");
      feed = own_feed;
    }
    units_.emplace_back(shape);
    induction_tables_.push_back(induction);
    feed_tables_.push_back(feed);
    coaction_info_.push_back({static_cast<uint32_t>(item_column_features_[shape.induction_column]),
                              shape.feed_sequence ? item_column_features_[shape.feed] : shape.feed, induction, feed});
  }
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
    spans_.push_back({offset, item_dims_[c], {candidate_field[c]}});
    offset += item_dims_[c];
  }
  for (uint32_t c : behaviour_columns_) {
    behaviour_field[c] = field("behaviours:" + item_names[c]);
    spans_.push_back({offset, item_dims_[c], {behaviour_field[c]}});
    offset += item_dims_[c];
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

void RankerModel::bind_rows(const Parameter* table, Parameter* cache, const std::vector<uint32_t>* slots) {
  for (size_t t = 0; t < owned_.size(); ++t)
    if (owned_[t].get() == table) {
      if (cache && (!slots || cache->row_size != table->row_size))
        throw TrainingError("ranking: table " + table->name + " bound to a cache without slots or of another row width");
      bindings_[t] = {cache, cache ? slots : nullptr};
      return;
    }
  throw TrainingError("ranking: bind_rows of a parameter that is not one of the model's tables");
}

RankerModel::RowSource RankerModel::source(const Parameter* table) const {
  for (size_t t = 0; t < owned_.size(); ++t)
    if (owned_[t].get() == table)
      return bindings_[t].cache ? RowSource{bindings_[t].cache, bindings_[t].slots->data()} : RowSource{owned_[t].get(), nullptr};
  throw TrainingError("ranking: " + table->name + " is not one of the model's tables");
}

std::vector<RankerModel::RowSource> RankerModel::sources(const std::vector<Parameter*>& tables) const {
  std::vector<RowSource> out;
  for (const Parameter* table : tables) out.push_back(source(table));
  return out;
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
    return TowerInputView{c, item_tables_[c]->value.data(), static_cast<uint32_t>(item_tables_[c]->shape[0]), item_dims_[c], pooling};
  };
  for (uint32_t c : candidate_columns_) view_.item_inputs.push_back(input(c));
  for (uint32_t c : behaviour_columns_) view_.behaviour_inputs.push_back(input(c));
  view_.coactions.clear();
  for (size_t k = 0; k < units_.size(); ++k) {
    CoActionView unit = units_[k].shape();
    unit.induction_table = induction_tables_[k]->value.data();
    // A feed read as the prefix of a wider embedding (no parameter independence) has no [rows, feed_dim]
    // array here: the exporter writes one (write_ranking), and nothing runs the SDK on this view's feeds.
    unit.feed_table = feed_tables_[k]->shape[1] == unit.feed_dim ? feed_tables_[k]->value.data() : nullptr;
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

RowInit RankerModel::row_init(const Parameter& table) const {
  return {table_seed(table_base_, table.name), table.shape.at(0), static_cast<uint32_t>(table.shape.at(1)), RowDistribution::kGlorotUniform};
}

void RankerModel::init(Rng& rng) {
  table_base_ = rng.next();
  initialised_ = true;
  for (auto& p : owned_)
    if (!p->value.empty()) init_all_rows(row_init(*p), p->value.data());
  for (auto& layer : layers_) {
    glorot_uniform(layer->weight, rng);
    std::fill(layer->bias.value.begin(), layer->bias.value.end(), 0.0f);
    std::fill(layer->alpha.value.begin(), layer->alpha.value.end(), 0.1f);
  }
}

void RankerModel::init_rows(const Parameter& table, std::span<const uint32_t> rows, float* out) const {
  if (!initialised_) throw TrainingError("ranking: rows of " + table.name + " drawn before the model's init");
  for (const auto& p : owned_)
    if (p.get() == &table) return funnel::train::init_rows(row_init(table), rows, out);
  throw TrainingError("ranking: " + table.name + " is not one of the model's tables");
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
  // From the shapes: a table sharded over ranks holds no values of its own (bind_rows).
  for (const auto& p : owned_) n += static_cast<size_t>(p->shape.at(0) * p->shape.at(1));
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
  const size_t width = input_dim_;
  const size_t columns = view_.item_columns;
  inputs_.assign(n * width, 0.0f);
  coaction_cache_.resize(units_.size());
  for (size_t k = 0; k < units_.size(); ++k) coaction_cache_[k].resize(n * units_[k].cache_size(config_.max_history));
  const std::vector<RowSource> user_rows = sources(user_tables_), item_rows = sources(item_tables_),
                               induction_rows = sources(induction_tables_), feed_rows = sources(feed_tables_);

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
        for (uint32_t id : ids) {
          const float* e = user_rows[k].value(id);
          for (uint32_t d = 0; d < config_.embedding_dim; ++d) row[offset + d] += inv * e[d];
        }
        offset += config_.embedding_dim;
      }
      for (uint32_t c : candidate_columns_) {
        const float* e = item_rows[c].value(item_ids_[target * columns + c]);
        std::copy(e, e + item_dims_[c], row + offset);
        offset += item_dims_[c];
      }
      const float scale = config_.pooling == "mean" && history.size() > 1 ? 1.0f / static_cast<float>(history.size()) : 1.0f;
      for (uint32_t c : behaviour_columns_) {
        const uint32_t width_c = item_dims_[c];
        for (uint32_t h : history) {
          const float* e = item_rows[c].value(item_ids_[h * columns + c]);
          for (uint32_t d = 0; d < width_c; ++d) row[offset + d] += e[d];
        }
        for (uint32_t d = 0; d < width_c; ++d) row[offset + d] *= scale;
        offset += width_c;
      }
      for (size_t k = 0; k < units_.size(); ++k) {
        const CoActionView& shape = units_[k].shape();
        const size_t rows = shape.feed_sequence ? history.size() : 1;
        feed.resize(rows * shape.feed_dim);
        for (size_t r = 0; r < rows; ++r) {
          const uint32_t id = shape.feed_sequence ? item_ids_[history[r] * columns + shape.feed]
                                                  : data_.users.features[shape.feed - user_offset_].ids_of(user)[0];
          const float* e = feed_rows[k].value(id);
          std::copy(e, e + shape.feed_dim, feed.data() + r * shape.feed_dim);
        }
        const uint32_t induction = item_ids_[target * columns + shape.induction_column];
        units_[k].forward(induction_rows[k].value(induction), feed.data(), rows,
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
  const size_t width = input_dim_;
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
  const std::vector<RowSource> user_rows = sources(user_tables_), item_rows = sources(item_tables_),
                               induction_rows = sources(induction_tables_), feed_rows = sources(feed_tables_);
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
        units_[k].backward(induction_rows[k].value(induction), rows,
                           coaction_cache_[k].data() + b * units_[k].cache_size(config_.max_history), dx.data() + b * width + offset,
                           scratch.data(), dinduction_[k].data() + b * shape.induction_width(),
                           dfeed_[k].data() + b * config_.max_history * shape.feed_dim);
        offset += shape.output_dim();
      }
    }
  }

  // Adds scale * g to the first `size` values of row `id` (a feed may be the prefix of a wider row).
  const auto add_row = [](const RowSource& table, uint32_t id, const float* g, size_t size, float scale) {
    float* row = table.grad(id);
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
      for (uint32_t id : ids) add_row(user_rows[k], id, g, dim, 1.0f / static_cast<float>(ids.size()));
      g += dim;
    }
    for (uint32_t c : candidate_columns_) {
      add_row(item_rows[c], item_ids_[target * columns + c], g, item_dims_[c], 1.0f);
      g += item_dims_[c];
    }
    const float scale = config_.pooling == "mean" && history.size() > 1 ? 1.0f / static_cast<float>(history.size()) : 1.0f;
    for (uint32_t c : behaviour_columns_) {
      for (uint32_t h : history) add_row(item_rows[c], item_ids_[h * columns + c], g, item_dims_[c], scale);
      g += item_dims_[c];
    }
    for (size_t k = 0; k < units_.size(); ++k) {
      const CoActionView& shape = units_[k].shape();
      add_row(induction_rows[k], item_ids_[target * columns + shape.induction_column],
              dinduction_[k].data() + b * shape.induction_width(), shape.induction_width(), 1.0f);
      const float* dfeed = dfeed_[k].data() + b * config_.max_history * shape.feed_dim;
      if (shape.feed_sequence) {
        for (size_t r = 0; r < history.size(); ++r)
          add_row(feed_rows[k], item_ids_[history[r] * columns + shape.feed], dfeed + r * shape.feed_dim, shape.feed_dim, 1.0f);
      } else {
        const uint32_t id = data_.users.features[shape.feed - user_offset_].ids_of(user)[0];
        add_row(feed_rows[k], id, dfeed, shape.feed_dim, 1.0f);
      }
    }
  }
}

}  // namespace funnel::train
