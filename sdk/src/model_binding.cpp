// Checking a verified model file and binding its views (model_binding.hpp). The file's parts are checked
// first, each on its own (format version, tensors, features, the item table); then each stage is bound:
// its views point into the file's tensors, and its wiring (which features, which tables, what widths) is
// checked against the parts. The order of the checks is the order in which a damaged file meets them, so
// a file with several problems always reports the same one.
#include "model_binding.hpp"

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "funnel/funnel.hpp"
#include "string_table.hpp"

namespace funnel {

Status corrupt(std::string message) { return {StatusCode::kCorruptModel, std::move(message)}; }

namespace {

// Limits on what a file may declare, checked before anything is sized or looped over from it. Far above
// any real model (dozens of features, input rows of a few thousand floats), low enough that no file can
// make a request allocate without bound or make validation quadratic in the file's size.
constexpr size_t kMaxFeatures = 4096;  // features; item-table columns; inputs of one list; co-action pairs
constexpr uint64_t kMaxRowWidth = 65536;  // floats in a tower's or the ranker's input row, a co-action row

// The SDK's enums mirror the schema's value for value (bind_inputs and bind_layers convert one to the
// other). A value added to either side alone stops the build (-Wswitch is an error in these switches);
// a value that differs fails the static_asserts.
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wswitch"
constexpr Activation sdk_activation(fb::Activation activation) {
  switch (activation) {
    case fb::Activation::None: return Activation::kNone;
    case fb::Activation::Relu: return Activation::kRelu;
    case fb::Activation::Tanh: return Activation::kTanh;
    case fb::Activation::PRelu: return Activation::kPRelu;
  }
  return Activation::kNone;  // not reached: bind_layers refuses values outside the schema's range
}
constexpr fb::Activation file_activation(Activation activation) {
  switch (activation) {
    case Activation::kNone: return fb::Activation::None;
    case Activation::kRelu: return fb::Activation::Relu;
    case Activation::kTanh: return fb::Activation::Tanh;
    case Activation::kPRelu: return fb::Activation::PRelu;
  }
  return fb::Activation::None;  // not reached: the switch names every activation
}
constexpr Pooling sdk_pooling(fb::Pooling pooling) {
  switch (pooling) {
    case fb::Pooling::Mean: return Pooling::kMean;
    case fb::Pooling::Sum: return Pooling::kSum;
  }
  return Pooling::kMean;  // not reached: bind_inputs refuses values outside the schema's range
}
constexpr fb::Pooling file_pooling(Pooling pooling) {
  switch (pooling) {
    case Pooling::kMean: return fb::Pooling::Mean;
    case Pooling::kSum: return fb::Pooling::Sum;
  }
  return fb::Pooling::Mean;  // not reached: the switch names every pooling
}
#pragma GCC diagnostic pop
constexpr bool mirrored(fb::Activation a) {
  return file_activation(sdk_activation(a)) == a && static_cast<int>(sdk_activation(a)) == static_cast<int>(a);
}
constexpr bool mirrored(fb::Pooling p) {
  return file_pooling(sdk_pooling(p)) == p && static_cast<int>(sdk_pooling(p)) == static_cast<int>(p);
}
static_assert(mirrored(fb::Activation::None) && mirrored(fb::Activation::Relu) && mirrored(fb::Activation::Tanh) &&
                  mirrored(fb::Activation::PRelu),
              "funnel::Activation (funnel/tower.hpp) and the schema's Activation (sdk/schema/funnel.fbs) must agree");
static_assert(mirrored(fb::Pooling::Mean) && mirrored(fb::Pooling::Sum),
              "funnel::Pooling (funnel/tower.hpp) and the schema's Pooling (sdk/schema/funnel.fbs) must agree");

// "<stage><text>" for the ranking-like stages' messages: one out-of-line concatenation instead of one inlined
// at every message (the WASM bundle's size).
[[gnu::noinline]] std::string stage_text(const char* stage, const char* text) { return std::string(stage) + text; }

size_t dtype_size(fb::DType dtype) {
  switch (dtype) {
    case fb::DType::F32: return 4;
    case fb::DType::F16: return 2;
    case fb::DType::I8: return 1;
  }
  return 0;
}

template <typename It>
std::string shape_string(It begin, It end) {
  std::string out;
  for (It it = begin; it != end; ++it) {
    if (!out.empty()) out.push_back('x');
    out.append(std::to_string(*it));
  }
  return out;
}

// The file being bound: its root, its size and the two vectors every stage indexes into.
struct File {
  File(const fb::Model& root, size_t bytes)
      : m(root),
        size(bytes),
        tensors(root.tensors()),
        tensor_count(tensors ? tensors->size() : 0),
        features(root.features()),
        feature_count(features ? features->size() : 0) {}
  const fb::Model& m;
  size_t size;
  const flatbuffers::Vector<flatbuffers::Offset<fb::Tensor>>* tensors;
  size_t tensor_count;
  const flatbuffers::Vector<flatbuffers::Offset<fb::FeatureSpec>>* features;
  size_t feature_count;
};

// --- checking the file's parts ---------------------------------------------------------------------------

// Why a file's format version is refused, or nothing: one message for both directions (the WASM build
// carries this code, and its size budget is tight).
Status check_format_version(const fb::Model& m, bool newer) {
  const uint32_t version = m.format_version();
  if (newer ? version <= kFormatVersion : version >= kOldestFormatVersion) return Status::ok();
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) about one long chain of string + string.
  std::string message = "model format version " + std::to_string(version);
  message.append(newer ? " is newer than this SDK reads: update the SDK" : " was written by an older Funnel: export the model again");
  message.append(" (this SDK reads versions ").append(std::to_string(kOldestFormatVersion)).append(" to ");
  message.append(std::to_string(kFormatVersion)).append(")");
  return {StatusCode::kUnsupported, std::move(message)};
}

Status check_format_not_newer(const fb::Model& m) {
  if (m.format_version() == 0) return corrupt("format_version is 0");
  return check_format_version(m, true);
}

// Checked after the tensors (whose layout has not changed), so that damaged old files still meet those checks.
// Format 1 kept its keys as vectors of strings, which this SDK no longer reads.
Status check_format_not_older(const fb::Model& m) { return check_format_version(m, false); }

// Every tensor: a known dtype, a shape no larger than the file whose size matches its bytes, aligned data.
Status check_tensors(const File& file) {
  for (size_t t = 0; t < file.tensor_count; ++t) {
    const fb::Tensor* tensor = file.tensors->Get(static_cast<flatbuffers::uoffset_t>(t));
    const std::string name(view_of(tensor->name()));
    const size_t element = dtype_size(tensor->dtype());
    if (element == 0) return corrupt("tensor '" + name + "' has an unknown dtype");
    // The FlatBuffers verifier (2.0.8) checks a vector's 4-byte length for alignment but not its 8-byte
    // elements, and reading a misaligned shape is undefined behaviour (the fuzzer's first find).
    if (reinterpret_cast<uintptr_t>(tensor->shape()->data()) % alignof(uint64_t) != 0)
      return corrupt("tensor '" + name + "' shape is misaligned");
    size_t count = 1;
    for (uint64_t extent : *tensor->shape()) {
      if (extent > file.size || (extent != 0 && count > file.size / extent))
        return corrupt("tensor '" + name + "' has an absurd shape (larger than the file)");
      count *= static_cast<size_t>(extent);
    }
    if (count * element != tensor->data()->size())
      return corrupt("tensor '" + name + "' holds " + std::to_string(tensor->data()->size()) + " bytes, its shape needs " +
                     std::to_string(count * element));
    if (reinterpret_cast<uintptr_t>(tensor->data()->data()) % element != 0)
      return corrupt("tensor '" + name + "' data is misaligned");
  }
  return Status::ok();
}

// Every feature: a distinct name, a known kind, a sound normalisation (dense) or enough ids for its
// vocabulary, hash buckets or boundaries (categorical).
Status check_features(const File& file) {
  const auto* features = file.features;
  const size_t feature_count = file.feature_count;
  if (feature_count > kMaxFeatures)
    return corrupt("the file declares " + std::to_string(feature_count) + " features; a model has at most " + std::to_string(kMaxFeatures));
  for (size_t f = 0; f < feature_count; ++f) {
    const fb::FeatureSpec* spec = features->Get(static_cast<flatbuffers::uoffset_t>(f));
    const std::string name(view_of(spec->name()));
    const std::string where = "feature '" + name + "'";
    for (size_t g = 0; g < f; ++g)
      if (view_of(features->Get(static_cast<flatbuffers::uoffset_t>(g))->name()) == name) return corrupt(where + " is declared twice");
    if (spec->kind() < fb::FeatureKind::MIN || spec->kind() > fb::FeatureKind::MAX) return corrupt(where + " has an unknown kind");
    if (spec->kind() == fb::FeatureKind::Dense) {
      if (!(spec->stddev() > 0.0f) || !std::isfinite(spec->mean())) return corrupt(where + " has an invalid normalisation");
      continue;
    }
    if (spec->cardinality() == 0) return corrupt(where + " has cardinality 0");
    if (spec->oov_id() >= spec->cardinality()) return corrupt(where + ": out-of-vocabulary id is not below the cardinality");
    if (Status st = StringTableView::check_shape(spec->values(), where + " vocabulary"); !st) return st;
    const size_t vocabulary = StringTableView(spec->values()).size();
    const size_t boundaries = spec->boundaries() ? spec->boundaries()->size() : 0;
    size_t ids_needed = 1;
    if (spec->hash_buckets() > 0) {
      ids_needed = size_t{spec->hash_buckets()} + 1;
    } else if (boundaries > 0) {
      for (size_t b = 1; b < boundaries; ++b)
        if (!(spec->boundaries()->Get(b - 1) < spec->boundaries()->Get(b))) return corrupt(where + ": boundaries are not increasing");
      ids_needed = boundaries + 2;
    } else {
      ids_needed = vocabulary + 1;
    }
    if (ids_needed > spec->cardinality())
      return corrupt(where + " needs " + std::to_string(ids_needed) + " ids but declares cardinality " +
                     std::to_string(spec->cardinality()));
  }
  return Status::ok();
}

// The item table the ranking stages read: keys, ids for every row and column, columns that are categorical
// features of the model.
Status check_item_table(const File& file) {
  const fb::ItemTable* items = file.m.items();
  if (!items) return Status::ok();
  if (!items->item_keys()) return corrupt("item table has no keys");
  if (Status s = StringTableView::check_shape(items->item_keys(), "item table keys"); !s) return s;
  const size_t rows = StringTableView(items->item_keys()).size();
  const size_t columns = items->features()->size();
  if (columns == 0) return corrupt("item table has no feature columns");
  if (columns > kMaxFeatures)
    return corrupt("item table has " + std::to_string(columns) + " feature columns; at most " + std::to_string(kMaxFeatures) + " are allowed");
  if (items->ids()->size() != rows * columns)
    return corrupt("item table holds " + std::to_string(items->ids()->size()) + " ids for " + std::to_string(rows) + " items of " +
                   std::to_string(columns) + " features");
  for (size_t c = 0; c < columns; ++c) {
    const uint32_t f = items->features()->Get(static_cast<flatbuffers::uoffset_t>(c));
    if (f >= file.feature_count || file.features->Get(f)->kind() != fb::FeatureKind::Categorical)
      return corrupt("item table column " + std::to_string(c) + " is not a categorical feature of the model");
  }
  // Each row's ids are checked against the cardinalities where encode_items reads them (and all of them
  // by verify()), not here: load time does not grow with the item count.
  return Status::ok();
}

// --- binding: tensors, inputs, layers, towers --------------------------------------------------------------

Status f32_tensor(const File& file, uint32_t index, std::initializer_list<uint64_t> shape, const std::string& what,
                  const fb::Tensor** out) {
  if (index >= file.tensor_count) return corrupt(what + " refers to tensor " + std::to_string(index) + ", which does not exist");
  const fb::Tensor* tensor = file.tensors->Get(index);
  if (tensor->dtype() != fb::DType::F32) return corrupt(what + ": tensor '" + std::string(view_of(tensor->name())) + "' must be f32");
  const auto* dims = tensor->shape();
  bool same = dims->size() == shape.size();
  size_t i = 0;
  for (uint64_t expected : shape) same = same && dims->Get(static_cast<flatbuffers::uoffset_t>(i++)) == expected;
  if (!same) {
    return corrupt(what + ": tensor '" + std::string(view_of(tensor->name())) + "' has shape [" + shape_string(dims->begin(), dims->end()) +
                   "], expected [" + shape_string(shape.begin(), shape.end()) + "]");
  }
  *out = tensor;
  return Status::ok();
}

const float* f32_data(const fb::Tensor* tensor) { return reinterpret_cast<const float*>(tensor->data()->data()); }

// A table [rows, dim] with dim in 1..65536; *dim receives it.
Status embedding_table(const File& file, uint32_t index, uint32_t rows, const std::string& what, const float** out, uint32_t* dim) {
  if (index >= file.tensor_count) return corrupt(what + " refers to a tensor that does not exist");
  const auto* dims = file.tensors->Get(index)->shape();
  if (dims->size() != 2 || dims->Get(1) == 0 || dims->Get(1) > 65536) return corrupt(what + ": embedding table must be [cardinality, dim]");
  const fb::Tensor* table = nullptr;
  if (Status s = f32_tensor(file, index, {rows, dims->Get(1)}, what, &table); !s) return s;
  *out = f32_data(table);
  *dim = static_cast<uint32_t>(dims->Get(1));
  return Status::ok();
}

// The column of the item table that holds `feature`, or -1.
int64_t item_column(const fb::ItemTable& items, uint32_t feature) {
  for (size_t c = 0; c < items.features()->size(); ++c)
    if (items.features()->Get(static_cast<flatbuffers::uoffset_t>(c)) == feature) return static_cast<int64_t>(c);
  return -1;
}

// A list of inputs. Each view stores the input's feature index where `columns` is null (user features), else
// its column of that item table (item and behaviour features).
Status bind_inputs(const File& file, const flatbuffers::Vector<flatbuffers::Offset<fb::TowerInput>>* inputs, const std::string& what,
                   const fb::ItemTable* columns, std::vector<TowerInputView>* views) {
  views->clear();
  if (!inputs) return Status::ok();
  if (inputs->size() > kMaxFeatures)
    return corrupt(what + " has " + std::to_string(inputs->size()) + " inputs; at most " + std::to_string(kMaxFeatures) + " are allowed");
  uint64_t width = 0;
  for (const fb::TowerInput* input : *inputs) {
    if (input->feature() >= file.feature_count)
      return corrupt(what + " reads feature " + std::to_string(input->feature()) + ", which does not exist");
    const fb::FeatureSpec* spec = file.features->Get(input->feature());
    const std::string input_what = what + " input '" + std::string(view_of(spec->name())) + "'";
    const int64_t column = columns ? item_column(*columns, input->feature()) : int64_t{input->feature()};
    if (column < 0) return corrupt(input_what + " is not a column of the item table");
    TowerInputView in;
    in.feature = static_cast<uint32_t>(column);
    if (input->pooling() < fb::Pooling::MIN || input->pooling() > fb::Pooling::MAX) return corrupt(input_what + " has an unknown pooling");
    in.pooling = sdk_pooling(input->pooling());
    if (spec->kind() == fb::FeatureKind::Dense) {
      if (input->embedding() != -1) return corrupt(input_what + ": a dense feature has no embedding table");
    } else {
      if (input->embedding() < 0) return corrupt(input_what + " has no embedding table");
      if (Status s = embedding_table(file, static_cast<uint32_t>(input->embedding()), spec->cardinality(), input_what, &in.table, &in.dim); !s)
        return s;
      in.rows = spec->cardinality();
    }
    // Inputs may share a table, so the row's width is not bounded by the file's size: limit it here,
    // before a request sizes scratch memory from it (and before it could wrap a uint32).
    width += in.table ? in.dim : 1;
    if (width > kMaxRowWidth) return corrupt(what + " inputs are wider than " + std::to_string(kMaxRowWidth) + " floats together");
    views->push_back(in);
  }
  return Status::ok();
}

// Dense layers over an input row of `width` floats, each layer's output the next one's input.
Status bind_layers(const File& file, const flatbuffers::Vector<flatbuffers::Offset<fb::DenseLayer>>* layers, uint32_t width,
                   const std::string& what, std::vector<DenseLayerView>* views) {
  views->clear();
  size_t l = 0;
  for (const fb::DenseLayer* layer : *layers) {
    const std::string layer_what = what + " layer " + std::to_string(l++);
    if (layer->weight() >= file.tensor_count) return corrupt(layer_what + " refers to a weight tensor that does not exist");
    const auto* dims = file.tensors->Get(layer->weight())->shape();
    if (dims->size() != 2 || dims->Get(0) == 0 || dims->Get(0) > 65536) return corrupt(layer_what + ": weight must be [out, in]");
    const uint32_t out_dim = static_cast<uint32_t>(dims->Get(0));
    const fb::Tensor *weight = nullptr, *bias = nullptr;
    if (Status s = f32_tensor(file, layer->weight(), {out_dim, width}, layer_what + " weight", &weight); !s) return s;
    if (Status s = f32_tensor(file, layer->bias(), {out_dim}, layer_what + " bias", &bias); !s) return s;
    if (layer->activation() < fb::Activation::MIN || layer->activation() > fb::Activation::MAX)
      return corrupt(layer_what + " has an unknown activation");
    DenseLayerView view{f32_data(weight), f32_data(bias), width, out_dim, sdk_activation(layer->activation())};
    if (view.activation == Activation::kPRelu) {
      const fb::Tensor* alpha = nullptr;
      if (layer->prelu_alpha() < 0) return corrupt(layer_what + " is PRelu without an alpha tensor");
      if (Status s = f32_tensor(file, static_cast<uint32_t>(layer->prelu_alpha()), {out_dim}, layer_what + " alpha", &alpha); !s) return s;
      view.alpha = f32_data(alpha);
    }
    views->push_back(view);
    width = out_dim;
  }
  return Status::ok();
}

Status bind_tower(const File& file, const fb::Tower* tower, const std::string& what, TowerView* view) {
  view->l2_normalize = tower->l2_normalize();
  if (tower->inputs()->size() == 0) return corrupt(what + " has no inputs");
  if (Status s = bind_inputs(file, tower->inputs(), what, nullptr, &view->inputs); !s) return s;
  return bind_layers(file, tower->layers(), view->input_dim(), what, &view->layers);
}

// --- the ranking and pre-ranking stages ---------------------------------------------------------------------

// One co-action unit (CAN): its induction and feed sides, the micro-MLP's shape and its two tables; *outputs
// receives the unit's outputs per order (the ranker's input row grows by outputs * orders).
Status bind_coaction(const File& file, const fb::ItemTable& items, const fb::CoAction& unit, const std::string& what, CoActionView* co,
                     uint64_t* outputs) {
  const int64_t induction = item_column(items, unit.induction_feature());
  if (induction < 0) return corrupt(what + ": the induction feature is not a column of the item table");
  co->induction_column = static_cast<uint32_t>(induction);
  co->feed_sequence = unit.feed_sequence();
  if (co->feed_sequence) {
    const int64_t feed = item_column(items, unit.feed_feature());
    if (feed < 0) return corrupt(what + ": a sequence feed must be a column of the item table");
    co->feed = static_cast<uint32_t>(feed);
  } else {
    if (unit.feed_feature() >= file.feature_count || file.features->Get(unit.feed_feature())->kind() != fb::FeatureKind::Categorical)
      return corrupt(what + ": a user feed must be a categorical feature");
    co->feed = unit.feed_feature();
  }
  if (unit.layer_sizes()->size() == 0 || unit.layer_sizes()->size() > 16) return corrupt(what + " needs 1 to 16 micro-MLP layers");
  for (uint32_t size : *unit.layer_sizes()) {
    if (size == 0 || size > 4096) return corrupt(what + ": micro-MLP layer sizes must be in 1..4096");
    co->layer_sizes.push_back(size);
  }
  if (unit.orders() == 0 || unit.orders() > 8) return corrupt(what + ": orders must be in 1..8");
  co->orders = unit.orders();
  co->bias = unit.bias();
  co->order_independent = unit.order_independent();
  const uint32_t feed_feature = co->feed_sequence ? items.features()->Get(co->feed) : co->feed;
  if (Status s = embedding_table(file, unit.feed_table(), file.features->Get(feed_feature)->cardinality(), what + " feed", &co->feed_table,
                                 &co->feed_dim);
      !s)
    return s;
  // The micro-MLP's sizes in 64 bits, limited before the uint32 accessors (induction_width, output_dim)
  // and the per-request cache are computed from them.
  uint64_t block = 0, hidden = co->feed_dim, in = co->feed_dim;
  *outputs = 0;
  for (size_t l = 0; l < co->layer_sizes.size(); ++l) {
    const uint64_t out = co->layer_sizes[l];
    block += in * out + (co->bias ? out : 0);
    if (l + 1 < co->layer_sizes.size()) hidden += out;
    *outputs += out;
    in = out;
  }
  const uint64_t induction_width = block * (co->order_independent ? co->orders : 1);
  if (induction_width > kMaxRowWidth || hidden * co->orders > kMaxRowWidth || *outputs * co->orders > kMaxRowWidth)
    return corrupt(what + ": the micro-MLP is larger than " + std::to_string(kMaxRowWidth) + " floats per row");
  const fb::Tensor* table = nullptr;
  if (Status s = f32_tensor(file, unit.induction_table(), {file.features->Get(unit.induction_feature())->cardinality(), co->induction_width()},
                            what + " induction", &table);
      !s)
    return s;
  co->induction_table = f32_data(table);
  return Status::ok();
}

// The ranking stage or the pre-ranking stage (the same table type; co-action pairs allowed in the former
// only), `name` naming it in messages. *user_features receives, per model feature, whether the stage's
// user side reads it.
Status bind_ranking_stage(const File& file, const fb::RankingStage& stage, bool coactions_allowed, const char* name, RankerView* view,
                          std::vector<uint8_t>* user_features) {
  const fb::ItemTable* items = file.m.items();
  if (!items) return corrupt("the " + stage_text(name, " stage needs the model's item table"));
  view->item_columns = static_cast<uint32_t>(items->features()->size());
  view->max_behaviours = stage.max_behaviours();
  if (Status s = bind_inputs(file, stage.user_inputs(), stage_text(name, " user"), nullptr, &view->user_inputs); !s) return s;
  if (Status s = bind_inputs(file, stage.item_inputs(), stage_text(name, " item"), items, &view->item_inputs); !s) return s;
  if (Status s = bind_inputs(file, stage.behaviour_inputs(), stage_text(name, " behaviour"), items, &view->behaviour_inputs); !s) return s;
  if (!view->behaviour_inputs.empty() && view->max_behaviours == 0)
    return corrupt(stage_text(name, " stage: behaviour inputs with max_behaviours 0"));
  view->coactions.clear();
  // The ranker's input row, in 64 bits: the inputs (each list already limited) and every co-action's outputs.
  uint64_t width = 0;
  for (const auto* inputs : {&view->user_inputs, &view->item_inputs, &view->behaviour_inputs})
    for (const TowerInputView& in : *inputs) width += in.table ? in.dim : 1;
  if (stage.coactions() && stage.coactions()->size() > 0 && !coactions_allowed)
    return corrupt("the " + stage_text(name, " stage has ") + std::to_string(stage.coactions()->size()) +
                   " co-action pairs; it is a plain DNN and may have none");
  if (stage.coactions()) {
    if (stage.coactions()->size() > kMaxFeatures)
      return corrupt(stage_text(name, " stage has ") + std::to_string(stage.coactions()->size()) + " co-action pairs; at most " +
                     std::to_string(kMaxFeatures) + " are allowed");
    size_t index = 0;
    for (const fb::CoAction* unit : *stage.coactions()) {
      CoActionView co;
      uint64_t outputs = 0;
      if (Status s = bind_coaction(file, *items, *unit, "co-action " + std::to_string(index++), &co, &outputs); !s) return s;
      width += outputs * co.orders;
      view->coactions.push_back(std::move(co));
    }
  }
  if (width > kMaxRowWidth) return corrupt(stage_text(name, " stage: the input row is wider than ") + std::to_string(kMaxRowWidth) + " floats");
  if (Status s = bind_layers(file, stage.layers(), view->input_dim(), name, &view->layers); !s) return s;
  if (view->layers.empty() || view->layers.back().out != 1) return corrupt(stage_text(name, " stage: the last layer must have one output (the logit)"));
  user_features->assign(file.feature_count, 0);
  for (const TowerInputView& in : view->user_inputs) (*user_features)[in.feature] = 1;
  for (const CoActionView& co : view->coactions)
    if (!co.feed_sequence) (*user_features)[co.feed] = 1;
  return Status::ok();
}

// --- the retrieval stage --------------------------------------------------------------------------------------

// The catalogue's rows in f32, f16 or i8 (with per-row scales) as `rows`, [dim] wide, and optionally exact f32
// rows for re-scoring a quantised catalogue (*exact, else null).
Status bind_catalogue(const File& file, const fb::Catalogue& catalogue, uint32_t dim, EmbeddingRows* rows, const float** exact) {
  if (!catalogue.item_keys()) return corrupt("catalogue has no keys");
  if (Status s = StringTableView::check_shape(catalogue.item_keys(), "catalogue keys"); !s) return s;
  const size_t count = StringTableView(catalogue.item_keys()).size();
  const uint32_t embeddings_index = catalogue.embeddings();
  if (embeddings_index >= file.tensor_count) return corrupt("catalogue embeddings refer to a tensor that does not exist");
  const fb::Tensor* embeddings = file.tensors->Get(embeddings_index);
  const auto* dims = embeddings->shape();
  if (dims->size() != 2 || dims->Get(0) != count || dims->Get(1) != dim)
    return corrupt("catalogue embeddings: tensor '" + std::string(view_of(embeddings->name())) + "' has shape [" +
                   shape_string(dims->begin(), dims->end()) + "], expected [" + std::to_string(count) + ", " + std::to_string(dim) + "]");
  *rows = {};
  rows->data = embeddings->data()->data();
  rows->rows = count;
  rows->dim = dim;
  switch (embeddings->dtype()) {
    case fb::DType::F16: rows->precision = Precision::kF16; break;
    case fb::DType::I8: rows->precision = Precision::kI8; break;
    default: rows->precision = Precision::kF32; break;
  }
  if (rows->precision == Precision::kI8) {
    const fb::Tensor* scales = nullptr;
    if (catalogue.scales() < 0) return corrupt("catalogue embeddings are i8 but the catalogue has no scales");
    if (Status s = f32_tensor(file, static_cast<uint32_t>(catalogue.scales()), {count}, "catalogue scales", &scales); !s) return s;
    rows->scales = f32_data(scales);
  } else if (catalogue.scales() >= 0) {
    return corrupt("catalogue scales are given but the embeddings are not i8");
  }
  *exact = nullptr;
  if (catalogue.exact_embeddings() >= 0) {
    if (rows->precision == Precision::kF32) return corrupt("catalogue exact embeddings are given but the embeddings are already f32");
    const fb::Tensor* table = nullptr;
    if (Status s = f32_tensor(file, static_cast<uint32_t>(catalogue.exact_embeddings()), {count, dim}, "catalogue exact embeddings", &table);
        !s)
      return s;
    *exact = f32_data(table);
  }
  return Status::ok();
}

}  // namespace

Status ModelBinding::bind(Model& model) {
  const File file(*model.root_, model.size_);
  if (Status s = check_format_not_newer(file.m); !s) return s;
  if (Status s = check_tensors(file); !s) return s;
  if (Status s = check_format_not_older(file.m); !s) return s;
  if (Status s = check_features(file); !s) return s;
  if (Status s = check_item_table(file); !s) return s;

  // One call site, so that the stage's code is emitted once (the WASM bundle's size).
  const std::pair<const fb::RankingStage*, Model::RankingStageState*> ranking_stages[] = {{file.m.ranking(), &model.ranking_},
                                                                                          {file.m.pre_ranking(), &model.pre_ranking_}};
  for (const auto& [stage, state] : ranking_stages) {
    if (!stage) continue;
    const bool coactions_allowed = state == &model.ranking_;
    if (Status s = bind_ranking_stage(file, *stage, coactions_allowed, state->name, &state->view, &state->user_features); !s) return s;
    state->present = true;
  }

  const fb::RetrievalStage* retrieval = file.m.retrieval();
  model.has_retrieval_ = retrieval != nullptr;
  if (!retrieval) return Status::ok();
  if (Status s = bind_tower(file, retrieval->user_tower(), "user tower", &model.user_tower_); !s) return s;
  if (Status s = bind_tower(file, retrieval->item_tower(), "item tower", &model.item_tower_); !s) return s;
  if (model.user_tower_.output_dim() != model.item_tower_.output_dim())
    return corrupt("user tower outputs " + std::to_string(model.user_tower_.output_dim()) + " dims, item tower " +
                   std::to_string(model.item_tower_.output_dim()));
  EmbeddingRows& rows = model.catalogue_view_;
  if (Status s = bind_catalogue(file, *retrieval->catalogue(), model.user_tower_.output_dim(), &rows, &model.catalogue_exact_); !s) return s;
  model.catalogue_rows_ = rows.rows;
  model.catalogue_dim_ = static_cast<uint32_t>(rows.dim);
  model.catalogue_ = rows.precision != Precision::kF32 ? model.catalogue_exact_ : static_cast<const float*>(rows.data);
  return Status::ok();
}

}  // namespace funnel
