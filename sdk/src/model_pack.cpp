// Packing an unpacked model (model_pack.hpp).
#include "model_pack.hpp"

#include "funnel/checksum.hpp"
#include "funnel/encoding.hpp"
#include "funnel/funnel.hpp"

namespace funnel {

namespace {

constexpr size_t kTensorAlignment = 32;

void stamp(fb::StringTableT* table) {
  if (table) table->checksum = string_table_checksum(table->bytes, table->ends, table->order);
}

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

Status pack_model(fb::ModelT& model, std::vector<uint8_t>* out) {
  model.format_version = kFormatVersion;
  for (const auto& feature : model.features) stamp(feature->values.get());
  if (model.retrieval && model.retrieval->catalogue) stamp(model.retrieval->catalogue->item_keys.get());
  if (model.items) {
    stamp(model.items->item_keys.get());
    model.items->checksum = item_table_checksum(model.items->features, model.items->ids);
  }
  size_t hint = 1024;
  for (const auto& tensor : model.tensors) hint += tensor->data.size() + kTensorAlignment + 64;
  flatbuffers::FlatBufferBuilder builder(hint);
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
  for (const auto& tensor : model.tensors) {
    builder.ForceVectorAlignment(tensor->data.size(), 1, kTensorAlignment);
    const auto data = builder.CreateVector(tensor->data);
    const auto shape = builder.CreateVector(tensor->shape);
    const auto name = builder.CreateString(tensor->name);
    tensors.push_back(fb::CreateTensor(builder, name, shape, tensor->dtype, data, checksum(tensor->data)));
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
                                    tensor_vector, retrieval, metadata_vector, ranking, items, pre_ranking, uint64_t{0});
  fb::FinishModelBuffer(builder, root);
  out->assign(builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize());
  // The root holds the checksum field (written above), so only bytes the verifier refuses fail here.
  if (!seal_model_file(*out)) {
    out->clear();
    return {StatusCode::kCorruptModel, "the packed model fails FlatBuffers verification, so it cannot be sealed"};
  }
  return Status::ok();
}

}  // namespace funnel
