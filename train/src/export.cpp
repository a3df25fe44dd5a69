#include "export.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "errors.hpp"
#include "funnel/funnel.hpp"
#include "funnel_generated.h"

namespace funnel::train {

namespace {

using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

// Tensor data aligned to 32 bytes so the SDK can use it in place (AVX loads, mmap).
constexpr size_t kTensorAlignment = 32;

class TensorWriter {
 public:
  explicit TensorWriter(FlatBufferBuilder& builder) : builder_(builder) {}

  uint32_t add(const std::string& name, const std::vector<uint64_t>& shape, const float* data, size_t count) {
    const size_t bytes = count * sizeof(float);
    builder_.ForceVectorAlignment(bytes, 1, kTensorAlignment);
    const auto data_offset = builder_.CreateVector(reinterpret_cast<const uint8_t*>(data), bytes);
    const auto shape_offset = builder_.CreateVector(shape);
    const auto name_offset = builder_.CreateString(name);
    tensors_.push_back(fb::CreateTensor(builder_, name_offset, shape_offset, fb::DType::F32, data_offset));
    return static_cast<uint32_t>(tensors_.size() - 1);
  }
  uint32_t add(const Parameter& p) { return add(p.name, p.shape, p.value.data(), p.value.size()); }

  const std::vector<Offset<fb::Tensor>>& tensors() const { return tensors_; }

 private:
  FlatBufferBuilder& builder_;
  std::vector<Offset<fb::Tensor>> tensors_;
};

// Positions of `keys` in bytewise order: the SDK binary-searches the file through this index.
std::vector<uint32_t> sorted_order(const std::vector<std::string>& keys) {
  std::vector<uint32_t> order(keys.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&keys](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
  return order;
}

Offset<fb::FeatureSpec> write_feature(FlatBufferBuilder& builder, const FeatureColumn& column) {
  const FeatureDef& def = column.def;
  const auto name = builder.CreateString(def.name);
  Offset<flatbuffers::Vector<Offset<flatbuffers::String>>> vocabulary;
  Offset<flatbuffers::Vector<uint32_t>> order;
  if (def.kind != FeatureKind::kDense && def.hash_buckets == 0 && def.boundaries.empty()) {
    vocabulary = builder.CreateVectorOfStrings(column.vocabulary);
    order = builder.CreateVector(sorted_order(column.vocabulary));
  }
  const auto boundaries = def.boundaries.empty() ? 0 : builder.CreateVector(def.boundaries);
  const auto separator = def.separator.empty() ? 0 : builder.CreateString(def.separator);
  fb::FeatureSpecBuilder spec(builder);
  spec.add_name(name);
  spec.add_kind(def.kind == FeatureKind::kDense              ? fb::FeatureKind::Dense
                : def.kind == FeatureKind::kMultiCategorical ? fb::FeatureKind::MultiCategorical
                                                             : fb::FeatureKind::Categorical);
  spec.add_cardinality(column.cardinality);
  spec.add_oov_id(0);
  if (!vocabulary.IsNull()) {
    spec.add_vocabulary(vocabulary);
    spec.add_vocabulary_order(order);
  }
  spec.add_hash_buckets(def.hash_buckets);
  if (!boundaries.IsNull()) spec.add_boundaries(boundaries);
  spec.add_prefix_length(def.prefix_length);
  if (!separator.IsNull()) spec.add_separator(separator);
  spec.add_mean(column.mean);
  spec.add_stddev(column.stddev);
  return spec.Finish();
}

Offset<fb::Tower> write_tower(FlatBufferBuilder& builder, TensorWriter& tensors, const TowerView& view, const TowerNet& net,
                              const std::vector<std::string>& layer_names) {
  std::vector<Offset<fb::TowerInput>> inputs;
  for (size_t i = 0; i < view.inputs.size(); ++i) {
    const TowerInputView& input = view.inputs[i];
    const int32_t table = input.table ? static_cast<int32_t>(tensors.add(*net.embedding(i))) : -1;
    inputs.push_back(fb::CreateTowerInput(builder, input.feature, table, fb::Pooling::Mean));
  }
  std::vector<Offset<fb::DenseLayer>> layers;
  for (size_t l = 0; l < view.layers.size(); ++l) {
    const DenseLayerView& layer = view.layers[l];
    const uint32_t weight = tensors.add(layer_names[l] + "/weight", {layer.out, layer.in}, layer.weight, size_t{layer.out} * layer.in);
    const uint32_t bias = tensors.add(layer_names[l] + "/bias", {layer.out}, layer.bias, layer.out);
    layers.push_back(fb::CreateDenseLayer(builder, weight, bias, static_cast<fb::Activation>(layer.activation)));
  }
  return fb::CreateTower(builder, builder.CreateVector(inputs), builder.CreateVector(layers), view.l2_normalize);
}

}  // namespace

std::vector<uint8_t> export_two_tower(const Dataset& data, const TwoTowerModel& model, const TrainConfig& config,
                                      const Metadata& metadata) {
  FlatBufferBuilder builder(1 << 20);
  TensorWriter tensors(builder);

  std::vector<Offset<fb::FeatureSpec>> features;
  for (const FeatureColumn& column : data.users.features) features.push_back(write_feature(builder, column));
  for (const FeatureColumn& column : data.items.features) features.push_back(write_feature(builder, column));

  const TowerView user_view = model.user_tower().view();
  const TowerView item_view = model.item_tower().view();
  std::vector<std::string> user_layers, item_layers;
  for (size_t l = 0; l < user_view.layers.size(); ++l) user_layers.push_back("user/dense" + std::to_string(l));
  for (size_t l = 0; l < item_view.layers.size(); ++l) item_layers.push_back("item/dense" + std::to_string(l));
  const auto user_tower = write_tower(builder, tensors, user_view, model.user_tower(), user_layers);
  const auto item_tower = write_tower(builder, tensors, item_view, model.item_tower(), item_layers);

  // The catalogue: every item embedded by the SDK's tower code, the same code that serves requests.
  const size_t dim = item_view.output_dim();
  std::vector<float> catalogue(data.items.size() * dim);
  std::vector<float> scratch(item_view.scratch_size());
  EncodedFeatures encoded;
  for (size_t i = 0; i < data.items.size(); ++i) {
    encode_row(data, data.items, i, &encoded);
    tower_forward(item_view, encoded, scratch.data(), catalogue.data() + i * dim);
  }
  const uint32_t embeddings = tensors.add("catalogue/embeddings", {data.items.size(), dim}, catalogue.data(), catalogue.size());
  const auto keys = builder.CreateVectorOfStrings(data.items.keys);
  const auto key_order = builder.CreateVector(sorted_order(data.items.keys));
  const auto catalogue_offset = fb::CreateCatalogue(builder, keys, key_order, embeddings);
  const auto retrieval = fb::CreateRetrievalStage(builder, user_tower, item_tower, config.temperature, catalogue_offset);

  std::vector<Offset<fb::KeyValue>> entries;
  for (const auto& [key, value] : metadata)
    entries.push_back(fb::CreateKeyValue(builder, builder.CreateString(key), builder.CreateString(value)));

  const auto root = fb::CreateModel(builder, kFormatVersion, builder.CreateString(std::string("funnel-train ") + kVersion),
                                    builder.CreateVector(features), builder.CreateVector(tensors.tensors()), retrieval,
                                    builder.CreateVector(entries));
  fb::FinishModelBuffer(builder, root);
  return {builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize()};
}

void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw TrainingError(temporary + ": cannot open for writing");
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw TrainingError(temporary + ": write failed (disk full?)");
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) throw TrainingError(path + ": cannot rename the written file into place: " + error.message());
}

}  // namespace funnel::train
