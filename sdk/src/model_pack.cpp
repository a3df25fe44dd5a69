// Packing an unpacked model (model_pack.hpp).
#include "model_pack.hpp"

#include "funnel/encoding.hpp"

namespace funnel {

namespace {

constexpr size_t kTensorAlignment = 32;

}  // namespace

std::vector<std::string> keys_of(const fb::StringTableT& table) {
  std::vector<std::string> keys;
  keys.reserve(table.ends.size());
  uint32_t begin = 0;
  for (const uint32_t end : table.ends) {
    keys.emplace_back(begin <= end && end <= table.bytes.size() ? std::string(table.bytes.begin() + begin, table.bytes.begin() + end) : std::string());
    begin = end;
  }
  return keys;
}

std::unique_ptr<fb::StringTableT> string_table(const std::vector<std::string>& keys) {
  PackedStrings packed = pack_strings(keys);
  auto table = std::make_unique<fb::StringTableT>();
  table->bytes = std::move(packed.bytes);
  table->ends = std::move(packed.ends);
  table->order = std::move(packed.order);
  return table;
}

std::vector<uint8_t> pack_model(const fb::ModelT& model) {
  size_t hint = 1024;
  for (const auto& tensor : model.tensors) hint += tensor->data.size() + kTensorAlignment + 64;
  flatbuffers::FlatBufferBuilder builder(hint);
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
  for (const auto& tensor : model.tensors) {
    builder.ForceVectorAlignment(tensor->data.size(), 1, kTensorAlignment);
    const auto data = builder.CreateVector(tensor->data);
    const auto shape = builder.CreateVector(tensor->shape);
    const auto name = builder.CreateString(tensor->name);
    tensors.push_back(fb::CreateTensor(builder, name, shape, tensor->dtype, data));
  }
  const auto tensor_vector = builder.CreateVector(tensors);
  std::vector<flatbuffers::Offset<fb::FeatureSpec>> features;
  for (const auto& feature : model.features) features.push_back(fb::CreateFeatureSpec(builder, feature.get()));
  const auto feature_vector = builder.CreateVector(features);
  std::vector<flatbuffers::Offset<fb::KeyValue>> metadata;
  for (const auto& entry : model.metadata) metadata.push_back(fb::CreateKeyValue(builder, entry.get()));
  const auto metadata_vector = builder.CreateVector(metadata);
  const auto retrieval = model.retrieval ? fb::CreateRetrievalStage(builder, model.retrieval.get()) : 0;
  const auto ranking = model.ranking ? fb::CreateRankingStage(builder, model.ranking.get()) : 0;
  const auto items = model.items ? fb::CreateItemTable(builder, model.items.get()) : 0;
  const auto pre_ranking = model.pre_ranking ? fb::CreateRankingStage(builder, model.pre_ranking.get()) : 0;
  const auto root = fb::CreateModel(builder, model.format_version, builder.CreateString(model.producer), feature_vector,
                                    tensor_vector, retrieval, metadata_vector, ranking, items, pre_ranking);
  fb::FinishModelBuffer(builder, root);
  return {builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize()};
}

}  // namespace funnel
