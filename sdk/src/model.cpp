#include "funnel/model.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <functional>
#include <limits>

#include "funnel/encoding.hpp"
#include "funnel/funnel.hpp"
#include "funnel_generated.h"
#include "string_table.hpp"

namespace funnel {

namespace {

// FlatBuffers cannot address more than 2 GiB; anything claiming more is corrupt before we look further.
constexpr size_t kMaxFileSize = size_t{1} << 31;
constexpr size_t kRequiredAlignment = 32;
// Limits on what a file may declare, checked before anything is sized or looped over from it. Far above
// any real model (dozens of features, input rows of a few thousand floats), low enough that no file can
// make a request allocate without bound or make validation quadratic in the file's size.
constexpr size_t kMaxFeatures = 4096;  // features; item-table columns; inputs of one list; co-action pairs
constexpr uint64_t kMaxRowWidth = 65536;  // floats in a tower's or the ranker's input row, a co-action row

Status corrupt(std::string message) { return {StatusCode::kCorruptModel, std::move(message)}; }

// "<stage><text>" for the ranking-like stages' messages: one out-of-line concatenation instead of one inlined
// at every message (the WASM bundle's size).
[[gnu::noinline]] std::string stage_text(const char* stage, const char* text) { return std::string(stage) + text; }

std::string_view view_of(const flatbuffers::String* s) { return s ? std::string_view(s->data(), s->size()) : std::string_view(); }

const char* kind_name(fb::FeatureKind kind) {
  switch (kind) {
    case fb::FeatureKind::Categorical: return "categorical";
    case fb::FeatureKind::MultiCategorical: return "multi_categorical";
    case fb::FeatureKind::Dense: return "dense";
  }
  return "unknown";
}

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

}  // namespace

Model::~Model() = default;

Status Model::load_file(const std::string& path, std::unique_ptr<Model>* out) {
  out->reset();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    return {error == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError,
            "cannot open model file '" + path + "': " + std::strerror(error)};
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return {StatusCode::kIoError, "model file '" + path + "' is not a regular file"};
  }
  const size_t size = static_cast<size_t>(info.st_size);
  if (size == 0 || size > kMaxFileSize) {
    ::close(fd);
    return corrupt("model file '" + path + "' has an impossible size of " + std::to_string(size) + " bytes");
  }
#if defined(__EMSCRIPTEN__)
  // No real mmap in WASM: read into memory the model owns.
  std::unique_ptr<Model> model;
  void* buffer = std::aligned_alloc(kRequiredAlignment, (size + kRequiredAlignment - 1) / kRequiredAlignment * kRequiredAlignment);
  if (!buffer) {
    ::close(fd);
    return {StatusCode::kIoError, "out of memory reading '" + path + "'"};
  }
  std::shared_ptr<void> storage(buffer, std::free);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, static_cast<uint8_t*>(buffer) + done, size - done);
    if (n <= 0) {
      ::close(fd);
      return {StatusCode::kIoError, "cannot read model file '" + path + "'"};
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
#else
  void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int error = errno;
  ::close(fd);
  if (mapping == MAP_FAILED) return {StatusCode::kIoError, "cannot mmap model file '" + path + "': " + std::strerror(error)};
  std::shared_ptr<void> storage(mapping, [size](void* p) { ::munmap(p, size); });
#endif
  const Status status = open(storage, static_cast<const uint8_t*>(storage.get()), size, out);
  if (!status) return {status.code(), "'" + path + "': " + status.message()};
  return status;
}

Status Model::load_bytes(const void* data, size_t size, std::unique_ptr<Model>* out) {
  out->reset();
  if (!data || size == 0) return corrupt("empty model buffer");
  if (size > kMaxFileSize) return corrupt("model buffer of " + std::to_string(size) + " bytes exceeds the 2 GiB format limit");
  const size_t rounded = (size + kRequiredAlignment - 1) / kRequiredAlignment * kRequiredAlignment;
  void* buffer = std::aligned_alloc(kRequiredAlignment, rounded);
  if (!buffer) return {StatusCode::kIoError, "out of memory copying a model of " + std::to_string(size) + " bytes"};
  std::memcpy(buffer, data, size);
  std::shared_ptr<void> storage(buffer, std::free);
  return open(std::move(storage), static_cast<const uint8_t*>(buffer), size, out);
}

Status Model::load_view(const void* data, size_t size, std::unique_ptr<Model>* out) {
  out->reset();
  if (!data || size == 0) return corrupt("empty model buffer");
  if (reinterpret_cast<uintptr_t>(data) % kRequiredAlignment != 0)
    return {StatusCode::kInvalidArgument, "model buffer must be 32-byte aligned for in-place use (use load_bytes to copy)"};
  return open(nullptr, static_cast<const uint8_t*>(data), size, out);
}

Status Model::open(std::shared_ptr<void> storage, const uint8_t* data, size_t size, std::unique_ptr<Model>* out) {
  out->reset();
  if (size < 8) return corrupt("file of " + std::to_string(size) + " bytes is too short to be a model");
  if (size > kMaxFileSize) return corrupt("file of " + std::to_string(size) + " bytes exceeds the 2 GiB format limit");
  if (!fb::ModelBufferHasIdentifier(data)) {
    std::string found(reinterpret_cast<const char*>(data) + 4, 4);
    for (char& c : found)
      if (c < 0x20 || c > 0x7e) c = '?';
    return corrupt("not a Funnel model: file identifier is '" + found + "', expected '" + fb::ModelIdentifier() + "'");
  }
  flatbuffers::Verifier::Options options;
  options.max_depth = 32;
  options.max_tables = 10'000'000;
  flatbuffers::Verifier verifier(data, size, options);
  if (!fb::VerifyModelBuffer(verifier))
    return corrupt("FlatBuffers verification failed: the file is truncated or damaged");
  std::unique_ptr<Model> model(new Model());
  model->storage_ = std::move(storage);
  model->data_ = data;
  model->size_ = size;
  model->root_ = fb::GetModel(data);
  if (Status status = model->validate(); !status) return status;
  *out = std::move(model);
  return Status::ok();
}

// Semantic checks: everything the kernels will index is proven in range here, once, so the hot paths
// need no checks of their own.
Status Model::validate() {
  const fb::Model& m = *root_;
  if (m.format_version() == 0) return corrupt("format_version is 0");
  if (m.format_version() > kFormatVersion)
    return {StatusCode::kUnsupported, "model format version " + std::to_string(m.format_version()) +
                                          " is newer than this SDK reads (" + std::to_string(kFormatVersion) + ")"};

  const auto* tensors = m.tensors();
  const size_t tensor_count = tensors ? tensors->size() : 0;
  for (size_t t = 0; t < tensor_count; ++t) {
    const fb::Tensor* tensor = tensors->Get(static_cast<flatbuffers::uoffset_t>(t));
    const std::string name(view_of(tensor->name()));
    const size_t element = dtype_size(tensor->dtype());
    if (element == 0) return corrupt("tensor '" + name + "' has an unknown dtype");
    // The FlatBuffers verifier (2.0.8) checks a vector's 4-byte length for alignment but not its 8-byte
    // elements, and reading a misaligned shape is undefined behaviour (the fuzzer's first find).
    if (reinterpret_cast<uintptr_t>(tensor->shape()->data()) % alignof(uint64_t) != 0)
      return corrupt("tensor '" + name + "' shape is misaligned");
    size_t count = 1;
    for (uint64_t extent : *tensor->shape()) {
      if (extent > size_ || (extent != 0 && count > size_ / extent))
        return corrupt("tensor '" + name + "' has an absurd shape (larger than the file)");
      count *= static_cast<size_t>(extent);
    }
    if (count * element != tensor->data()->size())
      return corrupt("tensor '" + name + "' holds " + std::to_string(tensor->data()->size()) + " bytes, its shape needs " +
                     std::to_string(count * element));
    if (reinterpret_cast<uintptr_t>(tensor->data()->data()) % element != 0)
      return corrupt("tensor '" + name + "' data is misaligned");
  }

  // Here, after the tensors (whose layout has not changed), so that damaged old files still meet those checks.
  if (m.format_version() < kFormatVersion)
    return {StatusCode::kUnsupported, "model format version " + std::to_string(m.format_version()) +
                                          " was written by an older Funnel: export the model again (this SDK reads version " +
                                          std::to_string(kFormatVersion) + ")"};

  const auto* features = m.features();
  const size_t feature_count = features ? features->size() : 0;
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

  const auto f32_tensor = [&](uint32_t index, std::initializer_list<uint64_t> shape, const std::string& what,
                              const fb::Tensor** out) -> Status {
    if (index >= tensor_count) return corrupt(what + " refers to tensor " + std::to_string(index) + ", which does not exist");
    const fb::Tensor* tensor = tensors->Get(index);
    if (tensor->dtype() != fb::DType::F32) return corrupt(what + ": tensor '" + std::string(view_of(tensor->name())) + "' must be f32");
    const auto* dims = tensor->shape();
    bool same = dims->size() == shape.size();
    size_t i = 0;
    for (uint64_t expected : shape) same = same && dims->Get(static_cast<flatbuffers::uoffset_t>(i++)) == expected;
    if (!same) {
      return corrupt(what + ": tensor '" + std::string(view_of(tensor->name())) + "' has shape [" +
                     shape_string(dims->begin(), dims->end()) + "], expected [" + shape_string(shape.begin(), shape.end()) + "]");
    }
    *out = tensor;
    return Status::ok();
  };
  const auto f32_data = [](const fb::Tensor* tensor) { return reinterpret_cast<const float*>(tensor->data()->data()); };

  // A table [rows, dim] with dim in 1..65536; *dim receives it.
  const auto embedding_table = [&](uint32_t index, uint32_t rows, const std::string& what, const float** out,
                                   uint32_t* dim) -> Status {
    if (index >= tensor_count) return corrupt(what + " refers to a tensor that does not exist");
    const auto* dims = tensors->Get(index)->shape();
    if (dims->size() != 2 || dims->Get(1) == 0 || dims->Get(1) > 65536) return corrupt(what + ": embedding table must be [cardinality, dim]");
    const fb::Tensor* table = nullptr;
    if (Status s = f32_tensor(index, {rows, dims->Get(1)}, what, &table); !s) return s;
    *out = f32_data(table);
    *dim = static_cast<uint32_t>(dims->Get(1));
    return Status::ok();
  };

  // `column_of` maps a feature index to the index the view stores (itself, or an item-table column).
  const auto build_inputs = [&](const flatbuffers::Vector<flatbuffers::Offset<fb::TowerInput>>* inputs, const std::string& what,
                                const std::function<int64_t(uint32_t)>& column_of, std::vector<TowerInputView>* views) -> Status {
    views->clear();
    if (!inputs) return Status::ok();
    if (inputs->size() > kMaxFeatures)
      return corrupt(what + " has " + std::to_string(inputs->size()) + " inputs; at most " + std::to_string(kMaxFeatures) + " are allowed");
    uint64_t width = 0;
    for (const fb::TowerInput* input : *inputs) {
      if (input->feature() >= feature_count) return corrupt(what + " reads feature " + std::to_string(input->feature()) + ", which does not exist");
      const fb::FeatureSpec* spec = features->Get(input->feature());
      const std::string input_what = what + " input '" + std::string(view_of(spec->name())) + "'";
      const int64_t column = column_of(input->feature());
      if (column < 0) return corrupt(input_what + " is not a column of the item table");
      TowerInputView in;
      in.feature = static_cast<uint32_t>(column);
      if (input->pooling() < fb::Pooling::MIN || input->pooling() > fb::Pooling::MAX) return corrupt(input_what + " has an unknown pooling");
      in.pooling = static_cast<Pooling>(input->pooling());
      if (spec->kind() == fb::FeatureKind::Dense) {
        if (input->embedding() != -1) return corrupt(input_what + ": a dense feature has no embedding table");
      } else {
        if (input->embedding() < 0) return corrupt(input_what + " has no embedding table");
        if (Status s = embedding_table(static_cast<uint32_t>(input->embedding()), spec->cardinality(), input_what, &in.table, &in.dim); !s)
          return s;
        in.rows = spec->cardinality();
      }
      // Inputs may share a table, so the row's width is not bounded by the file's size: limit it here,
      // before a request sizes scratch memory from it (and before it could wrap a uint32).
      width += in.table ? in.dim : 1;
      if (width > kMaxRowWidth)
        return corrupt(what + " inputs are wider than " + std::to_string(kMaxRowWidth) + " floats together");
      views->push_back(in);
    }
    return Status::ok();
  };

  const auto build_layers = [&](const flatbuffers::Vector<flatbuffers::Offset<fb::DenseLayer>>* layers, uint32_t width,
                                const std::string& what, std::vector<DenseLayerView>* views) -> Status {
    views->clear();
    size_t l = 0;
    for (const fb::DenseLayer* layer : *layers) {
      const std::string layer_what = what + " layer " + std::to_string(l++);
      if (layer->weight() >= tensor_count) return corrupt(layer_what + " refers to a weight tensor that does not exist");
      const auto* dims = tensors->Get(layer->weight())->shape();
      if (dims->size() != 2 || dims->Get(0) == 0 || dims->Get(0) > 65536) return corrupt(layer_what + ": weight must be [out, in]");
      const uint32_t out_dim = static_cast<uint32_t>(dims->Get(0));
      const fb::Tensor *weight = nullptr, *bias = nullptr;
      if (Status s = f32_tensor(layer->weight(), {out_dim, width}, layer_what + " weight", &weight); !s) return s;
      if (Status s = f32_tensor(layer->bias(), {out_dim}, layer_what + " bias", &bias); !s) return s;
      if (layer->activation() < fb::Activation::MIN || layer->activation() > fb::Activation::MAX)
        return corrupt(layer_what + " has an unknown activation");
      DenseLayerView view{f32_data(weight), f32_data(bias), width, out_dim, static_cast<Activation>(layer->activation())};
      if (view.activation == Activation::kPRelu) {
        const fb::Tensor* alpha = nullptr;
        if (layer->prelu_alpha() < 0) return corrupt(layer_what + " is PRelu without an alpha tensor");
        if (Status s = f32_tensor(static_cast<uint32_t>(layer->prelu_alpha()), {out_dim}, layer_what + " alpha", &alpha); !s) return s;
        view.alpha = f32_data(alpha);
      }
      views->push_back(view);
      width = out_dim;
    }
    return Status::ok();
  };

  const auto same_index = [](uint32_t feature) -> int64_t { return feature; };
  const auto build_tower = [&](const fb::Tower* tower, const std::string& what, TowerView* view) -> Status {
    view->l2_normalize = tower->l2_normalize();
    if (tower->inputs()->size() == 0) return corrupt(what + " has no inputs");
    if (Status s = build_inputs(tower->inputs(), what, same_index, &view->inputs); !s) return s;
    return build_layers(tower->layers(), view->input_dim(), what, &view->layers);
  };

  if (const fb::ItemTable* items = m.items()) {
    if (!items->item_keys()) return corrupt("item table has no keys");
    if (Status s = StringTableView::check_shape(items->item_keys(), "item table keys"); !s) return s;
    const size_t rows = StringTableView(items->item_keys()).size();
    const size_t columns = items->features()->size();
    if (columns == 0) return corrupt("item table has no feature columns");
    if (columns > kMaxFeatures)
      return corrupt("item table has " + std::to_string(columns) + " feature columns; at most " + std::to_string(kMaxFeatures) + " are allowed");
    if (items->ids()->size() != rows * columns)
      return corrupt("item table holds " + std::to_string(items->ids()->size()) + " ids for " + std::to_string(rows) +
                     " items of " + std::to_string(columns) + " features");
    for (size_t c = 0; c < columns; ++c) {
      const uint32_t f = items->features()->Get(static_cast<flatbuffers::uoffset_t>(c));
      if (f >= feature_count || features->Get(f)->kind() != fb::FeatureKind::Categorical)
        return corrupt("item table column " + std::to_string(c) + " is not a categorical feature of the model");
    }
    // Each row's ids are checked against the cardinalities where encode_items reads them (and all of them
    // by verify()), not here: load time does not grow with the item count.
  }

  // The ranking stage and the pre-ranking stage (the same table type, no co-action pairs allowed in the
  // latter): one validation and one view for both; the state's name names the stage in messages.
  const auto build_ranking_stage = [&](const fb::RankingStage* ranking, bool coactions_allowed, RankingStageState* state) -> Status {
    const char* name = state->name;
    const fb::ItemTable* items = m.items();
    if (!items) return corrupt("the " + stage_text(name, " stage needs the model's item table"));
    const auto column_of = [items](uint32_t feature) -> int64_t {
      for (size_t c = 0; c < items->features()->size(); ++c)
        if (items->features()->Get(static_cast<flatbuffers::uoffset_t>(c)) == feature) return static_cast<int64_t>(c);
      return -1;
    };
    RankerView& view = state->view;
    view.item_columns = static_cast<uint32_t>(items->features()->size());
    view.max_behaviours = ranking->max_behaviours();
    if (Status s = build_inputs(ranking->user_inputs(), stage_text(name, " user"), same_index, &view.user_inputs); !s) return s;
    if (Status s = build_inputs(ranking->item_inputs(), stage_text(name, " item"), column_of, &view.item_inputs); !s) return s;
    if (Status s = build_inputs(ranking->behaviour_inputs(), stage_text(name, " behaviour"), column_of, &view.behaviour_inputs); !s) return s;
    if (!view.behaviour_inputs.empty() && view.max_behaviours == 0) return corrupt(stage_text(name, " stage: behaviour inputs with max_behaviours 0"));
    view.coactions.clear();
    size_t index = 0;
    // The ranker's input row, in 64 bits: the inputs (each list already limited) and every co-action's outputs.
    uint64_t width = 0;
    for (const auto* inputs : {&view.user_inputs, &view.item_inputs, &view.behaviour_inputs})
      for (const TowerInputView& in : *inputs) width += in.table ? in.dim : 1;
    if (ranking->coactions() && ranking->coactions()->size() > 0 && !coactions_allowed)
      return corrupt("the " + stage_text(name, " stage has ") + std::to_string(ranking->coactions()->size()) +
                     " co-action pairs; it is a plain DNN and may have none");
    if (ranking->coactions()) {
      if (ranking->coactions()->size() > kMaxFeatures)
        return corrupt(stage_text(name, " stage has ") + std::to_string(ranking->coactions()->size()) + " co-action pairs; at most " +
                       std::to_string(kMaxFeatures) + " are allowed");
      for (const fb::CoAction* unit : *ranking->coactions()) {
        const std::string what = "co-action " + std::to_string(index++);
        CoActionView co;
        const int64_t induction = column_of(unit->induction_feature());
        if (induction < 0) return corrupt(what + ": the induction feature is not a column of the item table");
        co.induction_column = static_cast<uint32_t>(induction);
        co.feed_sequence = unit->feed_sequence();
        if (co.feed_sequence) {
          const int64_t feed = column_of(unit->feed_feature());
          if (feed < 0) return corrupt(what + ": a sequence feed must be a column of the item table");
          co.feed = static_cast<uint32_t>(feed);
        } else {
          if (unit->feed_feature() >= feature_count || features->Get(unit->feed_feature())->kind() != fb::FeatureKind::Categorical)
            return corrupt(what + ": a user feed must be a categorical feature");
          co.feed = unit->feed_feature();
        }
        if (unit->layer_sizes()->size() == 0 || unit->layer_sizes()->size() > 16) return corrupt(what + " needs 1 to 16 micro-MLP layers");
        for (uint32_t size : *unit->layer_sizes()) {
          if (size == 0 || size > 4096) return corrupt(what + ": micro-MLP layer sizes must be in 1..4096");
          co.layer_sizes.push_back(size);
        }
        if (unit->orders() == 0 || unit->orders() > 8) return corrupt(what + ": orders must be in 1..8");
        co.orders = unit->orders();
        co.bias = unit->bias();
        co.order_independent = unit->order_independent();
        const uint32_t feed_feature = co.feed_sequence ? items->features()->Get(co.feed) : co.feed;
        if (Status s = embedding_table(unit->feed_table(), features->Get(feed_feature)->cardinality(), what + " feed", &co.feed_table, &co.feed_dim); !s)
          return s;
        // The micro-MLP's sizes in 64 bits, limited before the uint32 accessors (induction_width, output_dim)
        // and the per-request cache are computed from them.
        uint64_t block = 0, hidden = co.feed_dim, outputs = 0, in = co.feed_dim;
        for (size_t l = 0; l < co.layer_sizes.size(); ++l) {
          const uint64_t out = co.layer_sizes[l];
          block += in * out + (co.bias ? out : 0);
          if (l + 1 < co.layer_sizes.size()) hidden += out;
          outputs += out;
          in = out;
        }
        const uint64_t induction_width = block * (co.order_independent ? co.orders : 1);
        if (induction_width > kMaxRowWidth || hidden * co.orders > kMaxRowWidth || outputs * co.orders > kMaxRowWidth)
          return corrupt(what + ": the micro-MLP is larger than " + std::to_string(kMaxRowWidth) + " floats per row");
        width += outputs * co.orders;
        const uint32_t induction_feature = unit->induction_feature();
        const fb::Tensor* table = nullptr;
        if (Status s = f32_tensor(unit->induction_table(), {features->Get(induction_feature)->cardinality(), co.induction_width()},
                                  what + " induction", &table);
            !s)
          return s;
        co.induction_table = f32_data(table);
        view.coactions.push_back(std::move(co));
      }
    }
    if (width > kMaxRowWidth) return corrupt(stage_text(name, " stage: the input row is wider than ") + std::to_string(kMaxRowWidth) + " floats");
    if (Status s = build_layers(ranking->layers(), view.input_dim(), name, &view.layers); !s) return s;
    if (view.layers.empty() || view.layers.back().out != 1) return corrupt(stage_text(name, " stage: the last layer must have one output (the logit)"));
    state->user_features.assign(feature_count, 0);
    for (const TowerInputView& in : view.user_inputs) state->user_features[in.feature] = 1;
    for (const CoActionView& co : view.coactions)
      if (!co.feed_sequence) state->user_features[co.feed] = 1;
    state->present = true;
    return Status::ok();
  };
  // One call site, so that the stage's code is emitted once (the WASM bundle's size).
  const std::pair<const fb::RankingStage*, RankingStageState*> ranking_stages[] = {{m.ranking(), &ranking_},
                                                                                   {m.pre_ranking(), &pre_ranking_}};
  for (const auto& [stage, state] : ranking_stages)
    if (stage)
      if (Status s = build_ranking_stage(stage, /*coactions_allowed=*/state == &ranking_, state); !s) return s;

  const fb::RetrievalStage* retrieval = m.retrieval();
  has_retrieval_ = retrieval != nullptr;
  if (!retrieval) return Status::ok();
  if (Status s = build_tower(retrieval->user_tower(), "user tower", &user_tower_); !s) return s;
  if (Status s = build_tower(retrieval->item_tower(), "item tower", &item_tower_); !s) return s;
  if (user_tower_.output_dim() != item_tower_.output_dim())
    return corrupt("user tower outputs " + std::to_string(user_tower_.output_dim()) + " dims, item tower " +
                   std::to_string(item_tower_.output_dim()));
  const fb::Catalogue* catalogue = retrieval->catalogue();
  if (!catalogue->item_keys()) return corrupt("catalogue has no keys");
  if (Status s = StringTableView::check_shape(catalogue->item_keys(), "catalogue keys"); !s) return s;
  catalogue_rows_ = StringTableView(catalogue->item_keys()).size();
  catalogue_dim_ = user_tower_.output_dim();
  // The catalogue's rows in f32, f16 or i8 (with per-row scales), and optionally exact f32 rows for re-scoring.
  const uint32_t embeddings_index = catalogue->embeddings();
  if (embeddings_index >= tensor_count) return corrupt("catalogue embeddings refer to a tensor that does not exist");
  const fb::Tensor* embeddings = tensors->Get(embeddings_index);
  const auto* dims = embeddings->shape();
  if (dims->size() != 2 || dims->Get(0) != catalogue_rows_ || dims->Get(1) != catalogue_dim_)
    return corrupt("catalogue embeddings: tensor '" + std::string(view_of(embeddings->name())) + "' has shape [" +
                   shape_string(dims->begin(), dims->end()) + "], expected [" + std::to_string(catalogue_rows_) + ", " +
                   std::to_string(catalogue_dim_) + "]");
  catalogue_view_ = {};
  catalogue_view_.data = embeddings->data()->data();
  catalogue_view_.rows = catalogue_rows_;
  catalogue_view_.dim = catalogue_dim_;
  switch (embeddings->dtype()) {
    case fb::DType::F16: catalogue_view_.precision = Precision::kF16; break;
    case fb::DType::I8: catalogue_view_.precision = Precision::kI8; break;
    default: catalogue_view_.precision = Precision::kF32; break;
  }
  const bool quantised = catalogue_view_.precision != Precision::kF32;
  if (catalogue_view_.precision == Precision::kI8) {
    const fb::Tensor* scales = nullptr;
    if (catalogue->scales() < 0) return corrupt("catalogue embeddings are i8 but the catalogue has no scales");
    if (Status s = f32_tensor(static_cast<uint32_t>(catalogue->scales()), {catalogue_rows_}, "catalogue scales", &scales); !s) return s;
    catalogue_view_.scales = f32_data(scales);
  } else if (catalogue->scales() >= 0) {
    return corrupt("catalogue scales are given but the embeddings are not i8");
  }
  catalogue_exact_ = nullptr;
  if (catalogue->exact_embeddings() >= 0) {
    if (!quantised) return corrupt("catalogue exact embeddings are given but the embeddings are already f32");
    const fb::Tensor* exact = nullptr;
    if (Status s = f32_tensor(static_cast<uint32_t>(catalogue->exact_embeddings()), {catalogue_rows_, catalogue_dim_},
                              "catalogue exact embeddings", &exact);
        !s)
      return s;
    catalogue_exact_ = f32_data(exact);
  }
  catalogue_ = quantised ? catalogue_exact_ : static_cast<const float*>(catalogue_view_.data);
  return Status::ok();
}

Status Model::verify() const {
  const auto* features = root_->features();
  for (size_t f = 0; features && f < features->size(); ++f) {
    const fb::FeatureSpec* spec = features->Get(static_cast<flatbuffers::uoffset_t>(f));
    if (Status s = StringTableView(spec->values()).verify("feature '" + std::string(view_of(spec->name())) + "' vocabulary"); !s) return s;
  }
  if (has_retrieval_)
    if (Status s = StringTableView(root_->retrieval()->catalogue()->item_keys()).verify("catalogue keys"); !s) return s;
  if (const fb::ItemTable* items = root_->items()) {
    const StringTableView keys(items->item_keys());
    if (Status s = keys.verify("item table keys"); !s) return s;
    const size_t columns = items->features()->size();
    for (size_t c = 0; c < columns; ++c) {
      const fb::FeatureSpec* spec = features->Get(items->features()->Get(static_cast<flatbuffers::uoffset_t>(c)));
      for (size_t r = 0; r < keys.size(); ++r)
        if (items->ids()->Get(static_cast<flatbuffers::uoffset_t>(r * columns + c)) >= spec->cardinality())
          return corrupt("item table: item '" + std::string(keys.at(r)) + "' has an id of feature '" + std::string(view_of(spec->name())) +
                         "' beyond its cardinality");
    }
  }
  return Status::ok();
}

uint32_t Model::format_version() const { return root_->format_version(); }

std::string_view Model::producer() const { return view_of(root_->producer()); }

std::vector<std::pair<std::string, std::string>> Model::metadata() const {
  std::vector<std::pair<std::string, std::string>> out;
  if (root_->metadata())
    for (const fb::KeyValue* kv : *root_->metadata()) out.emplace_back(std::string(view_of(kv->key())), std::string(view_of(kv->value())));
  return out;
}

size_t Model::feature_count() const { return root_->features() ? root_->features()->size() : 0; }

FeatureInfo Model::feature_info(size_t index) const {
  const fb::FeatureSpec* spec = root_->features()->Get(static_cast<flatbuffers::uoffset_t>(index));
  FeatureInfo info;
  info.name = std::string(view_of(spec->name()));
  info.kind = kind_name(spec->kind());
  info.cardinality = spec->cardinality();
  info.vocabulary_size = StringTableView(spec->values()).size();
  info.hash_buckets = spec->hash_buckets();
  return info;
}

int Model::feature_index(std::string_view name) const {
  for (size_t f = 0; f < feature_count(); ++f)
    if (view_of(root_->features()->Get(static_cast<flatbuffers::uoffset_t>(f))->name()) == name) return static_cast<int>(f);
  return -1;
}

std::string_view Model::item_key(size_t index) const {
  return StringTableView(root_->retrieval()->catalogue()->item_keys()).at(index);
}

int64_t Model::find_item(std::string_view key) const {
  if (!has_retrieval_) return -1;
  return StringTableView(root_->retrieval()->catalogue()->item_keys()).find(key);
}

Status Model::encode(const Features& raw, const TowerView& tower, EncodedFeatures* out) const {
  std::vector<uint8_t> used(feature_count(), 0);
  for (const TowerInputView& in : tower.inputs) used[in.feature] = 1;
  return encode_used(raw, used, out);
}

Status Model::encode_used(const Features& raw, std::span<const uint8_t> used, EncodedFeatures* out) const {
  const size_t count = feature_count();
  for (const auto& entry : raw.entries())
    if (feature_index(entry.first) < 0) {
      std::string known;
      for (size_t f = 0; f < count; ++f) known += (f ? ", " : "") + feature_info(f).name;
      return {StatusCode::kInvalidArgument, "unknown feature '" + entry.first + "'; this model's features are: " + known};
    }

  out->reset(count);
  for (size_t f = 0; f < count; ++f) {
    out->offsets[f] = static_cast<uint32_t>(out->ids.size());
    if (!used[f]) continue;
    const fb::FeatureSpec& spec = *root_->features()->Get(static_cast<flatbuffers::uoffset_t>(f));
    const std::string_view name = view_of(spec.name());
    const FeatureValue* value = raw.find(name);
    if (!value) return {StatusCode::kInvalidArgument, "missing feature '" + std::string(name) + "'"};

    if (spec.kind() == fb::FeatureKind::Dense) {
      double x = 0;
      if (value->type() == FeatureValue::Type::kNumber) {
        x = value->number_value();
      } else if (value->type() != FeatureValue::Type::kString || !parse_number(value->string_value(), &x)) {
        return {StatusCode::kInvalidArgument, "feature '" + std::string(name) + "' is dense and needs a number"};
      }
      out->dense[f] = static_cast<float>((x - spec.mean()) / spec.stddev());
      continue;
    }

    const auto id_of_key = [&spec](std::string_view key) -> uint32_t {
      key = key_prefix(key, spec.prefix_length());
      if (spec.hash_buckets() > 0) return hash_bucket(key, spec.hash_buckets());
      if (spec.boundaries() && spec.boundaries()->size() > 0) {
        double x = 0;
        if (!parse_number(key, &x)) return spec.oov_id();
        return bucketize({spec.boundaries()->data(), spec.boundaries()->size()}, x);
      }
      const int64_t position = StringTableView(spec.values()).find(key);
      return position < 0 ? spec.oov_id() : static_cast<uint32_t>(position + 1);
    };
    const auto id_of_number = [&](double x) -> uint32_t {
      if (spec.boundaries() && spec.boundaries()->size() > 0 && spec.hash_buckets() == 0)
        return bucketize({spec.boundaries()->data(), spec.boundaries()->size()}, x);
      return id_of_key(number_to_key(x));
    };

    switch (value->type()) {
      case FeatureValue::Type::kNumber: out->ids.push_back(id_of_number(value->number_value())); break;
      case FeatureValue::Type::kString: {
        const std::string_view text = value->string_value();
        const std::string_view separator = view_of(spec.separator());
        // Without a separator a multi-valued feature given as a string is one value.
        if (spec.kind() == fb::FeatureKind::MultiCategorical) {
          for (std::string_view part : split_values(text, separator)) out->ids.push_back(id_of_key(part));
        } else {
          out->ids.push_back(id_of_key(text));
        }
        break;
      }
      case FeatureValue::Type::kList:
        if (spec.kind() != fb::FeatureKind::MultiCategorical)
          return {StatusCode::kInvalidArgument, "feature '" + std::string(name) + "' is categorical and takes one value, not a list"};
        for (const std::string& item : value->list_value()) out->ids.push_back(id_of_key(item));
        break;
    }
    // An empty multi-valued feature pools the out-of-vocabulary row, as the trainer does.
    if (out->ids.size() == out->offsets[f]) out->ids.push_back(spec.oov_id());
  }
  out->offsets[count] = static_cast<uint32_t>(out->ids.size());
  return Status::ok();
}

Status Model::user_embedding(const Features& user, std::vector<float>* out) const {
  return tower_embedding(user_tower_, user, out);
}

Status Model::item_embedding(const Features& item, std::vector<float>* out) const {
  return tower_embedding(item_tower_, item, out);
}

Status Model::tower_embedding(const TowerView& tower, const Features& raw, std::vector<float>* out) const {
  if (!has_retrieval_) return {StatusCode::kInvalidArgument, "this model has no retrieval stage"};
  EncodedFeatures encoded;
  if (Status s = encode(raw, tower, &encoded); !s) return s;
  std::vector<float> scratch(tower.scratch_size());
  out->resize(tower.output_dim());
  tower_forward(tower, encoded, scratch.data(), out->data());
  return Status::ok();
}

void Model::score_catalogue(const float* query, float* scores) const {
  kernels::scan(catalogue_view_, 0, catalogue_rows_, query, scores);
}

void Model::catalogue_row(size_t index, float* out) const {
  const size_t dim = catalogue_dim_;
  if (catalogue_) {
    std::copy(catalogue_ + index * dim, catalogue_ + (index + 1) * dim, out);
  } else if (catalogue_view_.precision == Precision::kF16) {
    const uint16_t* row = static_cast<const uint16_t*>(catalogue_view_.data) + index * dim;
    for (size_t i = 0; i < dim; ++i) out[i] = half_to_float(row[i]);
  } else {
    const int8_t* row = static_cast<const int8_t*>(catalogue_view_.data) + index * dim;
    for (size_t i = 0; i < dim; ++i) out[i] = catalogue_view_.scales[index] * row[i];
  }
}

void Model::search_catalogue(const float* query, const SearchOptions& options, std::vector<Hit>* hits) const {
  SearchOptions exact_options = options;
  exact_options.exact = catalogue_exact_;
  search(catalogue_view_, query, exact_options, hits);
}

Status Model::retrieve(const Features& user, const RetrieveOptions& options, std::vector<Recommendation>* out) const {
  out->clear();
  if (options.k == 0) return {StatusCode::kInvalidArgument, "k must be at least 1"};
  std::vector<Hit> hits;
  if (Status s = top_items(user, options.k, options.exclude, {}, options.threads, &hits); !s) return s;
  out->reserve(hits.size());
  for (const Hit& hit : hits) out->push_back({item_key(hit.index), hit.index, hit.score});
  return Status::ok();
}

Status Model::top_items(const Features& user, size_t k, std::span<const std::string> exclude, std::span<const std::string> allow,
                        size_t threads, std::vector<Hit>* hits) const {
  std::vector<float> query;
  if (Status s = user_embedding(user, &query); !s) return s;
  const std::vector<uint8_t> skip = skip_mask(exclude, allow);
  SearchOptions search_options;
  search_options.k = k;
  search_options.skip = skip;
  search_options.threads = threads;
  search_catalogue(query.data(), search_options, hits);
  return Status::ok();
}

std::vector<uint8_t> Model::skip_mask(std::span<const std::string> exclude, std::span<const std::string> allow) const {
  std::vector<uint8_t> skip;
  if (!allow.empty() || !exclude.empty()) {
    skip.assign(catalogue_rows_, allow.empty() ? 0 : 1);
    for (const std::string& key : allow)
      if (const int64_t index = find_item(key); index >= 0) skip[static_cast<size_t>(index)] = 0;
    for (const std::string& key : exclude)
      if (const int64_t index = find_item(key); index >= 0) skip[static_cast<size_t>(index)] = 1;
  }
  return skip;
}

Status Model::retrieve_batch(std::span<const Features> users, const RetrieveOptions& options,
                             std::vector<std::vector<Recommendation>>* out) const {
  out->clear();
  if (options.k == 0) return {StatusCode::kInvalidArgument, "k must be at least 1"};
  if (!has_retrieval_) return {StatusCode::kInvalidArgument, "this model has no retrieval stage"};
  std::vector<float> queries(users.size() * catalogue_dim_), query;
  for (size_t u = 0; u < users.size(); ++u) {
    if (Status s = user_embedding(users[u], &query); !s) return {s.code(), "user " + std::to_string(u) + ": " + s.message()};
    std::copy(query.begin(), query.end(), queries.begin() + static_cast<std::ptrdiff_t>(u * catalogue_dim_));
  }
  const std::vector<uint8_t> skip = skip_mask(options.exclude, {});
  SearchOptions search_options;
  search_options.k = options.k;
  search_options.skip = skip;
  search_options.threads = options.threads;
  search_options.exact = catalogue_exact_;
  std::vector<std::vector<Hit>> hits;
  search_batch(catalogue_view_, queries.data(), users.size(), search_options, &hits);
  out->resize(users.size());
  for (size_t u = 0; u < users.size(); ++u)
    for (const Hit& hit : hits[u]) (*out)[u].push_back({item_key(hit.index), hit.index, hit.score});
  return Status::ok();
}

size_t Model::item_table_size() const { return root_->items() ? StringTableView(root_->items()->item_keys()).size() : 0; }

uint32_t Model::item_column_feature(size_t column) const {
  return root_->items()->features()->Get(static_cast<flatbuffers::uoffset_t>(column));
}

size_t Model::tensor_count() const { return root_->tensors() ? root_->tensors()->size() : 0; }

TensorInfo Model::tensor_info(size_t index) const {
  const fb::Tensor* tensor = root_->tensors()->Get(static_cast<flatbuffers::uoffset_t>(index));
  TensorInfo info;
  info.name = view_of(tensor->name());
  info.dtype = tensor->dtype() == fb::DType::F16 ? "f16" : tensor->dtype() == fb::DType::I8 ? "i8" : "f32";
  info.shape.assign(tensor->shape()->begin(), tensor->shape()->end());
  info.bytes = tensor->data()->size();
  return info;
}

std::string_view Model::ranking_item_key(size_t index) const { return StringTableView(root_->items()->item_keys()).at(index); }

int64_t Model::find_ranking_item(std::string_view key) const {
  const fb::ItemTable* items = root_->items();
  return items ? StringTableView(items->item_keys()).find(key) : -1;
}

Status Model::encode_items(std::span<const std::string> keys, bool unknown_is_error, std::vector<uint32_t>* ids) const {
  const fb::ItemTable* items = root_->items();
  if (!items) return {StatusCode::kInvalidArgument, "this model has no item table"};
  const size_t columns = items->features()->size();
  ids->resize(keys.size() * columns);
  for (size_t k = 0; k < keys.size(); ++k) {
    const int64_t row = StringTableView(items->item_keys()).find(keys[k]);
    for (size_t c = 0; c < columns; ++c) {
      uint32_t id = 0;
      if (row >= 0) {
        id = items->ids()->Get(static_cast<flatbuffers::uoffset_t>(static_cast<size_t>(row) * columns + c));
        const fb::FeatureSpec* spec = root_->features()->Get(items->features()->Get(static_cast<flatbuffers::uoffset_t>(c)));
        if (id >= spec->cardinality())  // load leaves this check to the reads (and verify())
          return corrupt("item table: item '" + keys[k] + "' has an id of feature '" + std::string(view_of(spec->name())) +
                         "' beyond its cardinality");
      } else if (unknown_is_error) {
        return {StatusCode::kNotFound, "item '" + keys[k] + "' is not in the model's item table"};
      } else {
        id = root_->features()->Get(items->features()->Get(static_cast<flatbuffers::uoffset_t>(c)))->oov_id();
      }
      (*ids)[k * columns + c] = id;
    }
  }
  return Status::ok();
}

Status Model::rank(const Features& user, std::span<const std::string> behaviours, std::span<const std::string> candidates,
                   std::vector<float>* probabilities) const {
  return rank_candidates(ranking_, user, behaviours, candidates, /*unknown_candidate_is_error=*/true, probabilities);
}

Status Model::prerank(const Features& user, std::span<const std::string> behaviours, std::span<const std::string> candidates,
                      std::vector<float>* probabilities) const {
  return rank_candidates(pre_ranking_, user, behaviours, candidates, /*unknown_candidate_is_error=*/true, probabilities);
}

Status Model::rank_candidates(const RankingStageState& stage, const Features& user, std::span<const std::string> behaviours,
                              std::span<const std::string> candidates, bool unknown_candidate_is_error,
                              std::vector<float>* probabilities) const {
  probabilities->clear();
  if (!stage.present) return {StatusCode::kInvalidArgument, std::string("this model has no ") + stage.name + " stage"};
  EncodedFeatures encoded;
  if (Status s = encode_used(user, stage.user_features, &encoded); !s) return s;
  std::vector<uint32_t> behaviour_ids, candidate_ids;
  // A behaviour the model never saw still counts as one, with out-of-vocabulary features, as an unseen
  // value does at training time; a candidate it cannot describe is the caller's mistake, unless it comes
  // from the retrieval stage of the same file.
  if (Status s = encode_items(behaviours, false, &behaviour_ids); !s) return s;
  if (Status s = encode_items(candidates, unknown_candidate_is_error, &candidate_ids); !s) return s;
  RankInput input{&encoded, behaviour_ids.data(), behaviours.size(), candidate_ids.data(), candidates.size()};
  RankScratch scratch;
  probabilities->resize(candidates.size());
  rank_logits(stage.view, input, &scratch, probabilities->data());
  for (float& p : *probabilities) p = 1.0f / (1.0f + std::exp(-p));
  return Status::ok();
}

}  // namespace funnel
