// Catalogue updates without retraining: new items embedded by the file's own item tower, items removed,
// and the result written back as a .funnel file. The FlatBuffers object API unpacks the model, the
// catalogue and the item table are rebuilt, and everything is packed again with tensors aligned as the
// exporter aligns them; the new bytes then go through the loader's full verification.
#include <cstring>
#include <numeric>
#include <unordered_map>

#include "funnel/atomic_file.hpp"
#include "funnel/funnel.hpp"
#include "funnel/encoding.hpp"
#include "funnel_generated.h"
#include "model_pack.hpp"

namespace funnel {

namespace {

// Where each row of an updated table comes from: a row of the old table, or an item of the update.
struct Row {
  bool added;
  size_t source;  // old row, or index into CatalogueUpdate::upsert
};

// The rows after the update: old rows in order (an upserted key's row replaced in place, removed keys
// dropped), then the new keys in the update's order.
std::vector<Row> plan_rows(const std::vector<std::string>& keys, const CatalogueUpdate& update, const std::vector<uint8_t>& removed,
                           std::vector<std::string>* new_keys) {
  std::unordered_map<std::string_view, size_t> upsert_of;
  for (size_t u = 0; u < update.upsert.size(); ++u) upsert_of.emplace(update.upsert[u].first, u);
  std::vector<Row> rows;
  std::vector<uint8_t> placed(update.upsert.size(), 0);
  new_keys->clear();
  for (size_t r = 0; r < keys.size(); ++r) {
    if (removed[r]) continue;
    const auto it = upsert_of.find(keys[r]);
    if (it != upsert_of.end()) {
      rows.push_back({true, it->second});
      placed[it->second] = 1;
    } else {
      rows.push_back({false, r});
    }
    new_keys->push_back(keys[r]);
  }
  for (size_t u = 0; u < update.upsert.size(); ++u)
    if (!placed[u]) {
      rows.push_back({true, u});
      new_keys->push_back(update.upsert[u].first);
    }
  return rows;
}

}  // namespace

Status Model::update_catalogue(const CatalogueUpdate& update, std::unique_ptr<Model>* out) const {
  out->reset();
  const fb::ItemTable* item_table = root_->items();
  if (!has_retrieval_ && !item_table) return invalid_argument("this model has neither a retrieval catalogue nor an item table to update");
  // The update itself: no key twice, nothing both removed and added.
  std::unordered_map<std::string_view, int> seen;
  for (const auto& [key, features] : update.upsert)
    if (!seen.emplace(key, 0).second) return invalid_argument("item '" + key + "' is added twice in one update");
  for (const std::string& key : update.remove) {
    const auto [it, fresh] = seen.emplace(key, 1);
    if (!fresh) return invalid_argument(it->second == 0 ? "item '" + key + "' is both added and removed" : "item '" + key + "' is removed twice");
    if ((!has_retrieval_ || find_item(key) < 0) && find_ranking_item(key) < 0)
      return invalid_argument("cannot remove item '" + key + "': the model has no such item");
  }

  // New rows first (every check that can fail runs before anything is copied): embeddings from the item
  // tower, item-table ids from the same raw features.
  const size_t dim = catalogue_dim_;
  std::vector<float> embeddings(has_retrieval_ ? update.upsert.size() * dim : 0), embedding;
  std::vector<uint32_t> item_ids;
  std::vector<uint8_t> columns_used(feature_count(), 0);
  const size_t columns = item_table ? item_table->features()->size() : 0;
  for (size_t c = 0; c < columns; ++c) columns_used[item_column_feature(c)] = 1;
  for (size_t u = 0; u < update.upsert.size(); ++u) {
    const auto& [key, features] = update.upsert[u];
    if (has_retrieval_) {
      if (Status s = item_embedding(features, &embedding); !s) return {s.code(), "item '" + key + "': " + s.message()};
      std::copy(embedding.begin(), embedding.end(), embeddings.begin() + static_cast<std::ptrdiff_t>(u * dim));
    }
    if (item_table) {
      EncodedFeatures encoded;
      if (Status s = encode_used(features, columns_used, &encoded); !s) return {s.code(), "item '" + key + "': " + s.message()};
      for (size_t c = 0; c < columns; ++c) item_ids.push_back(encoded.ids_of(item_column_feature(c))[0]);
    }
  }

  // The new file gets fresh checksums over whatever it copies, so damage must be found before it is copied.
  if (Status s = verify(); !s) return {s.code(), "the model to update fails verification: " + s.message()};
  std::unique_ptr<fb::ModelT> model(root_->UnPack());
  if (has_retrieval_) {
    fb::CatalogueT& catalogue = *model->retrieval->catalogue;
    const std::vector<std::string> old_keys = keys_of(*catalogue.item_keys);
    std::vector<uint8_t> removed(old_keys.size(), 0);
    for (const std::string& key : update.remove)
      if (const int64_t r = find_item(key); r >= 0) removed[static_cast<size_t>(r)] = 1;
    std::vector<std::string> keys;
    const std::vector<Row> rows = plan_rows(old_keys, update, removed, &keys);
    const Precision precision = catalogue_view_.precision;
    const size_t element = precision == Precision::kF32 ? 4 : precision == Precision::kF16 ? 2 : 1;
    fb::TensorT& stored = *model->tensors[catalogue.embeddings];
    fb::TensorT* scales = catalogue.scales >= 0 ? model->tensors[static_cast<size_t>(catalogue.scales)].get() : nullptr;
    fb::TensorT* exact = catalogue.exact_embeddings >= 0 ? model->tensors[static_cast<size_t>(catalogue.exact_embeddings)].get() : nullptr;
    std::vector<uint8_t> new_stored(rows.size() * dim * element), new_scales(scales ? rows.size() * 4 : 0),
        new_exact(exact ? rows.size() * dim * 4 : 0);
    std::vector<uint16_t> halves(dim);
    std::vector<int8_t> codes(dim);
    for (size_t r = 0; r < rows.size(); ++r) {
      uint8_t* target = new_stored.data() + r * dim * element;
      if (!rows[r].added) {
        const size_t s = rows[r].source;
        std::memcpy(target, stored.data.data() + s * dim * element, dim * element);
        if (scales) std::memcpy(new_scales.data() + r * 4, scales->data.data() + s * 4, 4);
        if (exact) std::memcpy(new_exact.data() + r * dim * 4, exact->data.data() + s * dim * 4, dim * 4);
        continue;
      }
      const float* row = embeddings.data() + rows[r].source * dim;
      if (precision == Precision::kF16) {
        floats_to_halves(row, dim, halves.data());
        // A finite component beyond the largest half (65504) became an infinity: refused, not stored.
        for (size_t d = 0; d < dim; ++d)
          if ((halves[d] & 0x7C00u) == 0x7C00u)
            return invalid_argument("item '" + keys[r] + "': embedding component " + std::to_string(d) + " (" +
                                    std::to_string(row[d]) + ") is beyond the f16 catalogue's range (|x| <= 65504)");
        std::memcpy(target, halves.data(), dim * 2);
      } else if (precision == Precision::kI8) {
        float scale;
        quantize_rows_i8(row, 1, dim, codes.data(), &scale);
        std::memcpy(target, codes.data(), dim);
        std::memcpy(new_scales.data() + r * 4, &scale, 4);
      } else {
        std::memcpy(target, row, dim * 4);
      }
      if (exact) std::memcpy(new_exact.data() + r * dim * 4, row, dim * 4);
    }
    stored.data = std::move(new_stored);
    stored.shape = {rows.size(), dim};
    if (scales) {
      scales->data = std::move(new_scales);
      scales->shape = {rows.size()};
    }
    if (exact) {
      exact->data = std::move(new_exact);
      exact->shape = {rows.size(), dim};
    }
    catalogue.item_keys = string_table(keys);
  }
  if (item_table) {
    fb::ItemTableT& items = *model->items;
    const std::vector<std::string> old_keys = keys_of(*items.item_keys);
    std::vector<uint8_t> removed(old_keys.size(), 0);
    for (const std::string& key : update.remove)
      if (const int64_t r = find_ranking_item(key); r >= 0) removed[static_cast<size_t>(r)] = 1;
    std::vector<std::string> keys;
    const std::vector<Row> rows = plan_rows(old_keys, update, removed, &keys);
    std::vector<uint32_t> ids;
    ids.reserve(rows.size() * columns);
    for (const Row& row : rows) {
      const uint32_t* source = row.added ? item_ids.data() + row.source * columns : items.ids.data() + row.source * columns;
      ids.insert(ids.end(), source, source + columns);
    }
    items.ids = std::move(ids);
    items.item_keys = string_table(keys);
  }
  // A trace of what was changed since training, in the file's metadata.
  const std::string note = "+" + std::to_string(update.upsert.size()) + " -" + std::to_string(update.remove.size()) + " by funnel-sdk " + kVersion;
  auto entry = std::find_if(model->metadata.begin(), model->metadata.end(), [](const auto& kv) { return kv->key == "catalogue_updates"; });
  if (entry == model->metadata.end()) {
    model->metadata.push_back(std::make_unique<fb::KeyValueT>());
    model->metadata.back()->key = "catalogue_updates";
    model->metadata.back()->value = note;
  } else {
    (*entry)->value += "; " + note;
  }
  std::vector<uint8_t> bytes;
  if (Status s = pack_model(*model, &bytes); !s) return s;
  model.reset();
  return load_bytes(bytes.data(), bytes.size(), out);
}

Status Model::save(const std::string& path) const {
  // Never half a model: a temporary file beside the target, flushed, then renamed (funnel/atomic_file.hpp).
  return write_file_atomically(path, data_, size_);
}

}  // namespace funnel
