#include "train/export/export.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "train/core/errors.hpp"
#include "funnel/checksum.hpp"
#include "funnel/funnel.hpp"
#include "funnel/encoding.hpp"
#include "funnel_generated.h"
#include "train/ranking/ranker_model.hpp"

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
    return add_bytes(name, shape, fb::DType::F32, data, count * sizeof(float));
  }
  uint32_t add_bytes(const std::string& name, const std::vector<uint64_t>& shape, fb::DType dtype, const void* data, size_t bytes) {
    builder_.ForceVectorAlignment(bytes, 1, kTensorAlignment);
    const auto data_offset = builder_.CreateVector(static_cast<const uint8_t*>(data), bytes);
    const auto shape_offset = builder_.CreateVector(shape);
    const auto name_offset = builder_.CreateString(stage_name(name));
    const uint64_t sum = checksum({static_cast<const uint8_t*>(data), bytes});
    tensors_.push_back(fb::CreateTensor(builder_, name_offset, shape_offset, dtype, data_offset, sum));
    return static_cast<uint32_t>(tensors_.size() - 1);
  }
  uint32_t add(const Parameter& p) { return add(p.name, p.shape, p.value.data(), p.value.size()); }

  const std::vector<Offset<fb::Tensor>>& tensors() const { return tensors_; }

  // While a stage other than ranking is written (the pre-ranking stage, whose student parameters are named
  // like the ranker's "ranking/..."), its tensors are named "<stage>/..." so that they never clash with the
  // ranking stage's: "ranking/dense0/weight" becomes "pre_ranking/dense0/weight". Empty: names as given.
  void set_stage(std::string stage) { stage_ = std::move(stage); }

 private:
  std::string stage_name(const std::string& name) const {
    if (stage_.empty()) return name;
    const std::string ranking = "ranking/";
    return stage_ + "/" + (name.compare(0, ranking.size(), ranking) == 0 ? name.substr(ranking.size()) : name);
  }

  FlatBufferBuilder& builder_;
  std::vector<Offset<fb::Tensor>> tensors_;
  std::string stage_;
};

// Keys as the file's StringTable (funnel::pack_strings, shared with the SDK's catalogue updates), with its
// checksum (funnel/checksum.hpp, as the SDK computes and verifies it).
Offset<fb::StringTable> write_strings(FlatBufferBuilder& builder, const std::vector<std::string>& keys) {
  const PackedStrings packed = pack_strings(keys);
  return fb::CreateStringTable(builder, builder.CreateVector(packed.bytes), builder.CreateVector(packed.ends),
                               builder.CreateVector(packed.order), string_table_checksum(packed.bytes, packed.ends, packed.order));
}

Offset<fb::FeatureSpec> write_feature(FlatBufferBuilder& builder, const FeatureColumn& column) {
  const FeatureDef& def = column.def;
  const auto name = builder.CreateString(def.name);
  Offset<fb::StringTable> vocabulary;
  if (def.kind != FeatureKind::kDense && def.hash_buckets == 0 && def.boundaries.empty())
    vocabulary = write_strings(builder, column.vocabulary);
  const auto boundaries = def.boundaries.empty() ? 0 : builder.CreateVector(def.boundaries);
  const auto separator = def.separator.empty() ? 0 : builder.CreateString(def.separator);
  fb::FeatureSpecBuilder spec(builder);
  spec.add_name(name);
  spec.add_kind(def.kind == FeatureKind::kDense              ? fb::FeatureKind::Dense
                : def.kind == FeatureKind::kMultiCategorical ? fb::FeatureKind::MultiCategorical
                                                             : fb::FeatureKind::Categorical);
  spec.add_cardinality(column.cardinality);
  spec.add_oov_id(0);
  if (!vocabulary.IsNull()) spec.add_values(vocabulary);
  spec.add_hash_buckets(def.hash_buckets);
  if (!boundaries.IsNull()) spec.add_boundaries(boundaries);
  spec.add_prefix_length(def.prefix_length);
  if (!separator.IsNull()) spec.add_separator(separator);
  spec.add_mean(column.mean);
  spec.add_stddev(column.stddev);
  return spec.Finish();
}

Offset<fb::DenseLayer> write_layer(FlatBufferBuilder& builder, TensorWriter& tensors, const DenseLayerView& layer,
                                   const std::string& name) {
  const uint32_t weight = tensors.add(name + "/weight", {layer.out, layer.in}, layer.weight, size_t{layer.out} * layer.in);
  const uint32_t bias = tensors.add(name + "/bias", {layer.out}, layer.bias, layer.out);
  const int32_t alpha = layer.alpha ? static_cast<int32_t>(tensors.add(name + "/alpha", {layer.out}, layer.alpha, layer.out)) : -1;
  return fb::CreateDenseLayer(builder, weight, bias, static_cast<fb::Activation>(layer.activation), alpha);
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
  for (size_t l = 0; l < view.layers.size(); ++l) layers.push_back(write_layer(builder, tensors, view.layers[l], layer_names[l]));
  return fb::CreateTower(builder, builder.CreateVector(inputs), builder.CreateVector(layers), view.l2_normalize);
}

std::vector<Offset<fb::FeatureSpec>> write_features(FlatBufferBuilder& builder, const Dataset& data) {
  std::vector<Offset<fb::FeatureSpec>> features;
  for (const FeatureColumn& column : data.users.features) features.push_back(write_feature(builder, column));
  for (const FeatureColumn& column : data.items.features) features.push_back(write_feature(builder, column));
  return features;
}

Offset<flatbuffers::Vector<Offset<fb::KeyValue>>> write_metadata(FlatBufferBuilder& builder, const Metadata& metadata) {
  std::vector<Offset<fb::KeyValue>> entries;
  for (const auto& [key, value] : metadata)
    entries.push_back(fb::CreateKeyValue(builder, builder.CreateString(key), builder.CreateString(value)));
  return builder.CreateVector(entries);
}

Offset<flatbuffers::String> producer(FlatBufferBuilder& builder) {
  return builder.CreateString(std::string("funnel-train ") + kVersion);
}

// The root carries a placeholder whole-file checksum; it is stamped once every other byte is final.
std::vector<uint8_t> finish(FlatBufferBuilder& builder, Offset<fb::Model> root) {
  fb::FinishModelBuffer(builder, root);
  std::vector<uint8_t> bytes(builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize());
  if (!seal_model_file(bytes)) throw TrainingError("export: the file written has no whole-file checksum field");
  return bytes;
}

Offset<fb::RetrievalStage> write_retrieval(FlatBufferBuilder& builder, TensorWriter& tensors, const Dataset& data,
                                           const TwoTowerModel& model, const TrainConfig& config) {
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
  const std::vector<uint64_t> shape = {data.items.size(), dim};
  Precision precision = Precision::kF32;
  parse_precision(config.catalogue_precision, &precision);  // validated with the config
  uint32_t embeddings = 0;
  int32_t scales = -1, exact = -1;
  if (precision == Precision::kF16) {
    std::vector<uint16_t> halves(catalogue.size());
    floats_to_halves(catalogue.data(), catalogue.size(), halves.data());
    embeddings = tensors.add_bytes("catalogue/embeddings", shape, fb::DType::F16, halves.data(), halves.size() * 2);
  } else if (precision == Precision::kI8) {
    std::vector<int8_t> codes(catalogue.size());
    std::vector<float> row_scales(data.items.size());
    quantize_rows_i8(catalogue.data(), data.items.size(), dim, codes.data(), row_scales.data());
    embeddings = tensors.add_bytes("catalogue/embeddings", shape, fb::DType::I8, codes.data(), codes.size());
    scales = static_cast<int32_t>(tensors.add("catalogue/scales", {data.items.size()}, row_scales.data(), row_scales.size()));
    exact = static_cast<int32_t>(tensors.add("catalogue/exact_embeddings", shape, catalogue.data(), catalogue.size()));
  } else {
    embeddings = tensors.add("catalogue/embeddings", shape, catalogue.data(), catalogue.size());
  }
  const auto catalogue_offset = fb::CreateCatalogue(builder, embeddings, scales, exact, write_strings(builder, data.items.keys));
  return fb::CreateRetrievalStage(builder, user_tower, item_tower, config.temperature, catalogue_offset);
}

// The item table: every item of the dataset, in table order, with `model`'s item columns (the ranking
// stage's, which the pre-ranking stage reads too).
Offset<fb::ItemTable> write_item_table(FlatBufferBuilder& builder, const Dataset& data, const RankerModel& model) {
  const std::vector<uint32_t>& columns = model.item_column_features();
  const std::vector<uint32_t>& ids_values = model.item_ids();
  const auto features = builder.CreateVector(columns);
  const auto ids = builder.CreateVector(ids_values);
  return fb::CreateItemTable(builder, features, ids, write_strings(builder, data.items.keys), item_table_checksum(columns, ids_values));
}

// A ranking-like stage. Its inputs name model features, never item-table columns: the model's own item
// columns map to model features here, and the loader maps those to the columns of whatever item table the
// file holds, so a stage that reads a subset of the table's columns, or another order, needs no ids of its own.
Offset<fb::RankingStage> write_ranking(FlatBufferBuilder& builder, TensorWriter& tensors, const RankerModel& model) {
  const RankerView& view = model.view();

  // Every table is written once, however many inputs and co-action pairs read it: the candidate and the
  // behaviours share the item tables, pairs may share co-action tables, and without parameter independence
  // a pair reads the embedding tables themselves.
  std::vector<std::pair<const Parameter*, uint32_t>> written;
  const auto tensor_of = [&](const Parameter* p) {
    for (const auto& [parameter, index] : written)
      if (parameter == p) return index;
    written.emplace_back(p, tensors.add(*p));
    return written.back().second;
  };
  // User inputs are listed in table order; an item input's `feature` is its item column, which indexes its
  // table (the candidate and the behaviours may read different columns).
  const auto inputs = [&](const std::vector<TowerInputView>& views, const std::vector<const Parameter*>& tables,
                          const std::vector<uint32_t>& feature_of, bool by_column) {
    std::vector<Offset<fb::TowerInput>> out;
    for (size_t k = 0; k < views.size(); ++k) {
      const size_t t = by_column ? views[k].feature : k;
      out.push_back(fb::CreateTowerInput(builder, feature_of[t], static_cast<int32_t>(tensor_of(tables[t])),
                                         static_cast<fb::Pooling>(views[k].pooling)));
    }
    return builder.CreateVector(out);
  };
  std::vector<const Parameter*> user_tables, item_tables;
  std::vector<uint32_t> user_features;
  for (size_t k = 0; k < view.user_inputs.size(); ++k) {
    user_tables.push_back(&model.user_table(k));
    user_features.push_back(view.user_inputs[k].feature);
  }
  for (size_t c = 0; c < view.item_columns; ++c) item_tables.push_back(&model.item_table(c));
  const auto user_inputs = inputs(view.user_inputs, user_tables, user_features, false);
  const auto item_inputs = inputs(view.item_inputs, item_tables, model.item_column_features(), true);
  const auto behaviour_inputs = inputs(view.behaviour_inputs, item_tables, model.item_column_features(), true);

  // A feed that is the prefix of wider embedding rows (parameter independence off) is written as the
  // [rows, feed_dim] table the SDK reads, once per embedding table.
  std::vector<std::pair<const Parameter*, uint32_t>> prefixes;
  const auto feed_tensor_of = [&](const Parameter* p, uint32_t feed_dim) {
    if (p->shape[1] == feed_dim) return tensor_of(p);
    for (const auto& [parameter, index] : prefixes)
      if (parameter == p) return index;
    const size_t rows = p->shape[0], width = p->shape[1];
    std::vector<float> prefix(rows * feed_dim);
    for (size_t r = 0; r < rows; ++r) std::copy_n(p->value.data() + r * width, feed_dim, prefix.data() + r * feed_dim);
    const std::string name = "ranking/coaction/feed/" + p->name.substr(p->name.rfind('/') + 1) + "/from_embedding";
    prefixes.emplace_back(p, tensors.add(name, {rows, feed_dim}, prefix.data(), prefix.size()));
    return prefixes.back().second;
  };
  std::vector<Offset<fb::CoAction>> coactions;
  for (size_t k = 0; k < view.coactions.size(); ++k) {
    const CoActionView& unit = view.coactions[k];
    const RankerModel::CoActionInfo& info = model.coaction_info()[k];
    const uint32_t induction = tensor_of(info.induction), feed = feed_tensor_of(info.feed, unit.feed_dim);
    coactions.push_back(fb::CreateCoAction(builder, info.induction_feature, info.feed_feature, unit.feed_sequence, induction, feed,
                                           builder.CreateVector(unit.layer_sizes), unit.bias, unit.orders, unit.order_independent));
  }
  std::vector<Offset<fb::DenseLayer>> layers;
  for (size_t l = 0; l < view.layers.size(); ++l)
    layers.push_back(write_layer(builder, tensors, view.layers[l], "ranking/dense" + std::to_string(l)));
  return fb::CreateRankingStage(builder, user_inputs, item_inputs, behaviour_inputs, view.max_behaviours,
                                builder.CreateVector(coactions), builder.CreateVector(layers));
}

std::string feature_name(const Dataset& data, uint32_t feature) {
  const size_t users = data.users.features.size();
  return feature < users ? data.users.features[feature].def.name : data.items.features[feature - users].def.name;
}

// The pre-ranking student must be a plain DNN whose item features are columns of the file's item table.
void check_pre_ranker(const Dataset& data, const RankerModel& student, const RankerModel& table_owner, bool own_table) {
  if (!student.view().coactions.empty())
    throw TrainingError("pre-ranking: the student has " + std::to_string(student.view().coactions.size()) +
                        " co-action pairs; the pre-ranking stage is a plain DNN and takes none");
  const std::vector<uint32_t>& columns = table_owner.item_column_features();
  for (const auto* inputs : {&student.view().item_inputs, &student.view().behaviour_inputs})
    for (const TowerInputView& input : *inputs) {
      const uint32_t feature = student.item_column_features()[input.feature];
      if (std::find(columns.begin(), columns.end(), feature) != columns.end()) continue;
      std::string names;
      for (uint32_t f : columns) names += (names.empty() ? "" : ", ") + feature_name(data, f);
      throw TrainingError("pre-ranking: item feature '" + feature_name(data, feature) + "' is not a column of the " +
                          (own_table ? "student's" : "ranking stage's") + " item table (" + names + ")");
    }
}

}  // namespace

std::vector<uint8_t> export_funnel(const Dataset& data, const RetrievalPart* retrieval, const RankerModel* ranker,
                                   const Metadata& metadata) {
  return export_funnel(data, retrieval, ranker, nullptr, metadata);
}

std::vector<uint8_t> export_funnel(const Dataset& data, const RetrievalPart* retrieval, const RankerModel* ranker,
                                   const RankerModel* pre_ranker, const Metadata& metadata) {
  // The item table is the ranking stage's; the student's own only when there is no ranking stage.
  const RankerModel* table_owner = ranker ? ranker : pre_ranker;
  if (pre_ranker) check_pre_ranker(data, *pre_ranker, *table_owner, !ranker);
  FlatBufferBuilder builder(1 << 20);
  TensorWriter tensors(builder);
  const auto features = write_features(builder, data);
  const auto retrieval_stage = retrieval ? write_retrieval(builder, tensors, data, retrieval->model, retrieval->config) : 0;
  const auto ranking = ranker ? write_ranking(builder, tensors, *ranker) : 0;
  Offset<fb::RankingStage> pre_ranking = 0;
  if (pre_ranker) {
    tensors.set_stage("pre_ranking");
    pre_ranking = write_ranking(builder, tensors, *pre_ranker);
    tensors.set_stage("");
  }
  const auto items = table_owner ? write_item_table(builder, data, *table_owner) : 0;
  const auto entries = write_metadata(builder, metadata);
  return finish(builder, fb::CreateModel(builder, kFormatVersion, producer(builder), builder.CreateVector(features),
                                         builder.CreateVector(tensors.tensors()), retrieval_stage, entries, ranking, items,
                                         pre_ranking, uint64_t{0}));
}

std::vector<uint8_t> export_two_tower(const Dataset& data, const TwoTowerModel& model, const TrainConfig& config,
                                      const Metadata& metadata) {
  const RetrievalPart retrieval{model, config};
  return export_funnel(data, &retrieval, nullptr, metadata);
}

std::vector<uint8_t> export_ranker(const Dataset& data, const RankerModel& model, const Metadata& metadata) {
  return export_funnel(data, nullptr, &model, metadata);
}

}  // namespace funnel::train
