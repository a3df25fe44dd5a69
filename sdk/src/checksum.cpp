// The model file's checksums (funnel/checksum.hpp, checksum.hpp): XXH3-64 from xxHash's header, compiled
// into this file alone (XXH_INLINE_ALL), so that nothing links libxxhash and only code that reaches these
// functions carries XXH3 (not the WASM package, which exports no verify and no writer).
#include "checksum.hpp"

#include <string>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "verifier_options.hpp"

#include "model_binding.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the model file is little-endian: checksums hash its uint32 vectors as they are in memory"
#endif

namespace funnel {

namespace {

// One XXH3-64 stream over several byte ranges (the state lives on the stack: no allocation).
class Stream {
 public:
  Stream() { XXH3_64bits_reset(&state_); }
  Stream& add(const void* data, size_t bytes) {
    if (bytes > 0) XXH3_64bits_update(&state_, data, bytes);
    return *this;
  }
  template <typename T>
  Stream& add(std::span<const T> values) { return add(values.data(), values.size_bytes()); }
  uint64_t digest() const { return XXH3_64bits_digest(&state_); }

 private:
  XXH3_state_t state_;
};

template <typename T>
std::span<const T> span_of(const flatbuffers::Vector<T>* vector) {
  return vector ? std::span<const T>(vector->data(), vector->size()) : std::span<const T>();
}

// Where the root's `checksum` field lies in the file, or null when the root has none.
const uint8_t* file_checksum_field(const fb::Model& root) {
  // The generated table inherits flatbuffers::Table privately; the cast is how FlatBuffers reads it too.
  return reinterpret_cast<const flatbuffers::Table*>(&root)->GetAddressOf(fb::Model::VT_CHECKSUM);
}

uint64_t file_checksum(const uint8_t* data, size_t size, const uint8_t* field) {
  const size_t offset = static_cast<size_t>(field - data);
  const uint8_t zeros[sizeof(uint64_t)] = {};
  return Stream().add(data, offset).add(zeros, sizeof zeros).add(field + sizeof zeros, size - offset - sizeof zeros).digest();
}

// (Appended, not "'" + ...: GCC 12 warns falsely about the latter, -Wrestrict.)
std::string quoted(const flatbuffers::String* name) {
  std::string out = "'";
  out.append(view_of(name)).append("'");
  return out;
}

// A part's stored checksum against the one computed now (only its presence when `hash` is false). `what` names
// the part in the message.
Status compare(const flatbuffers::Optional<uint64_t>& stored, bool required, bool hash, const std::string& what,
               uint64_t (*compute)(const void*), const void* part) {
  if (!stored) return required ? corrupt(what + " carries no checksum (a format 3 file carries one for every tensor and table)") : Status::ok();
  if (hash && compute(part) != *stored) return corrupt(what + " fails its checksum: its bytes changed after the file was written");
  return Status::ok();
}

uint64_t tensor_sum(const void* part) { return checksum(span_of(static_cast<const fb::Tensor*>(part)->data())); }

uint64_t strings_sum(const void* part) {
  const auto* table = static_cast<const fb::StringTable*>(part);
  return string_table_checksum(span_of(table->bytes()), span_of(table->ends()), span_of(table->order()));
}

uint64_t items_sum(const void* part) {
  const auto* items = static_cast<const fb::ItemTable*>(part);
  return item_table_checksum(span_of(items->features()), span_of(items->ids()));
}

}  // namespace

uint64_t checksum(std::span<const uint8_t> bytes) { return XXH3_64bits(bytes.data(), bytes.size()); }

uint64_t string_table_checksum(std::span<const uint8_t> bytes, std::span<const uint32_t> ends, std::span<const uint32_t> order) {
  return Stream().add(bytes).add(ends).add(order).digest();
}

uint64_t item_table_checksum(std::span<const uint32_t> features, std::span<const uint32_t> ids) {
  return Stream().add(features).add(ids).digest();
}

bool seal_model_file(std::span<uint8_t> file) {
  flatbuffers::Verifier verifier(file.data(), file.size(), model_verifier_options());
  if (!fb::VerifyModelBuffer(verifier)) return false;
  const uint8_t* field = file_checksum_field(*fb::GetModel(file.data()));
  if (!field) return false;
  uint8_t* target = file.data() + (field - file.data());
  flatbuffers::WriteScalar(target, uint64_t{0});
  flatbuffers::WriteScalar(target, file_checksum(file.data(), file.size(), field));
  return true;
}

bool has_file_checksum(const fb::Model& root) { return root.checksum().has_value(); }

Status verify_checksums(const fb::Model& root, const uint8_t* data, size_t size) {
  // One hashing pass when the file is intact: a matching whole-file checksum means every byte is as it was
  // written, the parts' checksums included, so the parts are only checked to carry one (a file sealed without
  // them is still refused). Otherwise (or without one) the parts' checksums say where it changed.
  const uint8_t* field = file_checksum_field(root);
  const bool intact = field && file_checksum(data, size, field) == flatbuffers::ReadScalar<uint64_t>(field);
  const bool required = root.format_version() >= 3, hash = !intact;
  if (const auto* tensors = root.tensors())
    for (const fb::Tensor* tensor : *tensors)
      if (Status s = compare(tensor->checksum(), required, hash, "tensor " + quoted(tensor->name()), tensor_sum, tensor); !s) return s;
  const auto strings = [&](const fb::StringTable* table, const std::string& what) {
    return table ? compare(table->checksum(), required, hash, what, strings_sum, table) : Status::ok();
  };
  if (const auto* features = root.features())
    for (const fb::FeatureSpec* spec : *features)
      if (Status s = strings(spec->values(), "feature " + quoted(spec->name()) + " vocabulary"); !s) return s;
  if (const fb::RetrievalStage* retrieval = root.retrieval())
    if (Status s = strings(retrieval->catalogue()->item_keys(), "catalogue keys"); !s) return s;
  if (const fb::ItemTable* items = root.items()) {
    if (Status s = strings(items->item_keys(), "item table keys"); !s) return s;
    if (Status s = compare(items->checksum(), required, hash, "item table ids", items_sum, items); !s) return s;
  }
  if (intact) return Status::ok();
  if (!field) return required ? corrupt("the file carries no whole-file checksum (a format 3 file carries one)") : Status::ok();
  return corrupt("the file fails its whole-file checksum: a byte outside every tensor and key table (features, stage wiring, "
                 "metadata or a checksum) changed after the file was written");
}

}  // namespace funnel
