// Joining stage files into one model (Model::bundle, `funnel bundle`): the trainer writes one stage (or
// pre-ranking with ranking) per file, the SDK serves the whole funnel from one. The parts are unpacked with
// the FlatBuffers object API; each stage moves into the new model with the tensors it references (indices
// renumbered), the item tables of pre-ranking and ranking parts are joined by key, and the result is packed
// as catalogue updates pack theirs, then loaded and verified like any file. No number of a stage changes, so
// the bundle answers as its parts do.
//
// Only the SDK is needed: the file format and its checks are the SDK's, and the parts are files a user
// already serves.
#include <algorithm>
#include <array>
#include <initializer_list>
#include <cstring>
#include <type_traits>
#include <unordered_map>

#include "funnel/funnel.hpp"
#include "funnel_generated.h"
#include "json_text.hpp"
#include "model_pack.hpp"

namespace funnel {

namespace {

// The stages in cascade order, named as the schema names them (also in the lineage and in metadata keys).
constexpr size_t kRetrieval = 0, kPreRanking = 1, kRanking = 2, kStageCount = 3;
constexpr std::array<const char*, kStageCount> kStageNames = {"retrieval", "pre_ranking", "ranking"};

struct Part {
  const std::string* name;
  std::unique_ptr<fb::ModelT> model;
  std::vector<size_t> stages;  // the stages it contributes, in cascade order
};

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// --- features --------------------------------------------------------------------------------------------

// Floats compared bit for bit: the bundle must encode every raw value exactly as each part did. (memcmp, not
// std::bit_cast: Emscripten's libc++ lacks it.)
bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool same_vocabulary(const fb::FeatureSpecT& a, const fb::FeatureSpecT& b) {
  const std::vector<std::string> none;
  return (a.values ? keys_of(*a.values) : none) == (b.values ? keys_of(*b.values) : none);
}

// The first field in which two specifications of one feature differ, or null where they agree.
const char* differing_field(const fb::FeatureSpecT& a, const fb::FeatureSpecT& b) {
  if (a.kind != b.kind) return "kind";
  if (a.cardinality != b.cardinality) return "cardinality";
  if (a.oov_id != b.oov_id) return "out-of-vocabulary id";
  if (!same_vocabulary(a, b)) return "vocabulary";
  if (a.hash_buckets != b.hash_buckets) return "hash buckets";
  if (!std::equal(a.boundaries.begin(), a.boundaries.end(), b.boundaries.begin(), b.boundaries.end(), same_bits)) return "boundaries";
  if (a.prefix_length != b.prefix_length) return "prefix length";
  if (a.separator != b.separator) return "separator";
  if (!same_bits(a.mean, b.mean)) return "mean";
  if (!same_bits(a.stddev, b.stddev)) return "standard deviation";
  return nullptr;
}

// Every stage indexes features by position, so the parts must declare the same features in the same order.
Status check_same_features(const Part& a, const Part& b) {
  const auto& left = a.model->features;
  const auto& right = b.model->features;
  for (size_t f = 0; f < std::max(left.size(), right.size()); ++f) {
    if (f >= left.size() || f >= right.size()) {
      const bool in_left = f < left.size();
      return invalid_argument("feature " + quoted((in_left ? left : right)[f]->name) + " of " + quoted(*(in_left ? a : b).name) +
                              " is not a feature of " + quoted(*(in_left ? b : a).name) + ": the files must declare the same features");
    }
    if (left[f]->name != right[f]->name)
      return invalid_argument("feature " + std::to_string(f) + " is " + quoted(left[f]->name) + " in " + quoted(*a.name) + " but " +
                              quoted(right[f]->name) + " in " + quoted(*b.name) + ": the files must declare the same features in the same order");
    if (const char* field = differing_field(*left[f], *right[f]))
      return invalid_argument("feature " + quoted(left[f]->name) + " has another " + field + " in " + quoted(*b.name) + " than in " +
                              quoted(*a.name) + ": the stages would encode its values differently");
  }
  return Status::ok();
}

// --- item keys -------------------------------------------------------------------------------------------

// Views into `keys`, which must outlive the map.
std::unordered_map<std::string_view, size_t> rows_by_key(const std::vector<std::string>& keys) {
  std::unordered_map<std::string_view, size_t> rows;
  rows.reserve(keys.size());
  for (size_t r = 0; r < keys.size(); ++r) rows.emplace(keys[r], r);
  return rows;
}

// The first of `keys` that `table` lacks, or null.
const std::string* first_missing(const std::vector<std::string>& keys, const std::unordered_map<std::string_view, size_t>& table) {
  for (const std::string& key : keys)
    if (!table.contains(key)) return &key;
  return nullptr;
}

// The ranking part's item table with the pre-ranking part's columns it lacks, rows aligned by key. The two
// tables must hold the same keys and, in the columns both hold, the same ids: an item means one thing to
// both stages.
Status join_item_tables(const Part& pre_ranking, Part& ranking, std::unique_ptr<fb::ItemTableT>* out) {
  fb::ItemTableT& base = *ranking.model->items;
  const fb::ItemTableT& other = *pre_ranking.model->items;
  const std::vector<std::string> base_keys = keys_of(*base.item_keys), other_keys = keys_of(*other.item_keys);
  const auto base_rows = rows_by_key(base_keys), other_rows = rows_by_key(other_keys);
  const auto missing = [](const std::string& key, const Part& holder, const Part& lacker) {
    return invalid_argument("item " + quoted(key) + " is in the item table of " + quoted(*holder.name) + " but not in that of " +
                            quoted(*lacker.name) + ": the pre-ranking and ranking stages must know the same items");
  };
  if (const std::string* key = first_missing(base_keys, other_rows)) return missing(*key, ranking, pre_ranking);
  if (const std::string* key = first_missing(other_keys, base_rows)) return missing(*key, pre_ranking, ranking);

  const size_t base_width = base.features.size(), other_width = other.features.size();
  std::vector<size_t> added;  // columns of `other` that `base` lacks
  for (size_t c = 0; c < other_width; ++c) {
    const auto shared = std::find(base.features.begin(), base.features.end(), other.features[c]);
    if (shared == base.features.end()) {
      added.push_back(c);
      continue;
    }
    const size_t b = static_cast<size_t>(shared - base.features.begin());
    for (size_t r = 0; r < base_keys.size(); ++r) {
      const uint32_t base_id = base.ids[r * base_width + b], other_id = other.ids[other_rows.at(base_keys[r]) * other_width + c];
      if (base_id != other_id)
        return invalid_argument("item " + quoted(base_keys[r]) + ": feature " + quoted(ranking.model->features[other.features[c]]->name) +
                                " has id " + std::to_string(base_id) + " in the item table of " + quoted(*ranking.name) + " but " +
                                std::to_string(other_id) + " in that of " + quoted(*pre_ranking.name));
    }
  }
  std::vector<uint32_t> ids;
  ids.reserve(base_keys.size() * (base_width + added.size()));
  for (size_t r = 0; r < base_keys.size(); ++r) {
    ids.insert(ids.end(), base.ids.begin() + static_cast<std::ptrdiff_t>(r * base_width),
               base.ids.begin() + static_cast<std::ptrdiff_t>((r + 1) * base_width));
    const size_t o = other_rows.at(base_keys[r]);
    for (const size_t c : added) ids.push_back(other.ids[o * other_width + c]);
  }
  for (const size_t c : added) base.features.push_back(other.features[c]);
  base.ids = std::move(ids);
  *out = std::move(ranking.model->items);
  return Status::ok();
}

// --- tensors ---------------------------------------------------------------------------------------------

// visit(index) on every tensor index a stage holds (an optional one only where it is set); visit may
// rewrite the index.
template <typename Visit>
void visit_inputs(std::vector<std::unique_ptr<fb::TowerInputT>>& inputs, Visit& visit) {
  for (auto& input : inputs)
    if (input->embedding >= 0) visit(input->embedding);
}

template <typename Visit>
void visit_layers(std::vector<std::unique_ptr<fb::DenseLayerT>>& layers, Visit& visit) {
  for (auto& layer : layers) {
    visit(layer->weight);
    visit(layer->bias);
    if (layer->prelu_alpha >= 0) visit(layer->prelu_alpha);
  }
}

template <typename Visit>
void visit_stage(fb::RetrievalStageT& stage, Visit& visit) {
  for (fb::TowerT* tower : {stage.user_tower.get(), stage.item_tower.get()}) {
    visit_inputs(tower->inputs, visit);
    visit_layers(tower->layers, visit);
  }
  fb::CatalogueT& catalogue = *stage.catalogue;
  visit(catalogue.embeddings);
  if (catalogue.scales >= 0) visit(catalogue.scales);
  if (catalogue.exact_embeddings >= 0) visit(catalogue.exact_embeddings);
}

template <typename Visit>
void visit_stage(fb::RankingStageT& stage, Visit& visit) {
  visit_inputs(stage.user_inputs, visit);
  visit_inputs(stage.item_inputs, visit);
  visit_inputs(stage.behaviour_inputs, visit);
  for (auto& coaction : stage.coactions) {
    visit(coaction->induction_table);
    visit(coaction->feed_table);
  }
  visit_layers(stage.layers, visit);
}

template <typename Visit>
void visit_stages(fb::ModelT& model, Visit&& visit) {
  if (model.retrieval) visit_stage(*model.retrieval, visit);
  if (model.pre_ranking) visit_stage(*model.pre_ranking, visit);
  if (model.ranking) visit_stage(*model.ranking, visit);
}

// Moves the tensors `part`'s stages reference (in the part's order, each once) to the end of `tensors` and
// renumbers the stages' references. Unreferenced tensors stay behind. `owners` maps each carried tensor's
// name to the part it came from: the SDK and the tools find tensors by name, so names stay unique.
Status carry_tensors(Part& part, std::vector<std::unique_ptr<fb::TensorT>>* tensors,
                     std::unordered_map<std::string, const std::string*>* owners) {
  std::vector<std::unique_ptr<fb::TensorT>>& source = part.model->tensors;
  constexpr uint32_t kUnused = UINT32_MAX;
  std::vector<uint32_t> new_index(source.size(), kUnused);
  // A stage's index may lie outside the tensors only in a field the SDK ignores (the alpha of a layer that is
  // not PRelu, the scales of a catalogue that is not int8): the loader never checks those.
  bool in_range = true;
  visit_stages(*part.model, [&](auto& index) {
    if (static_cast<size_t>(index) < source.size()) {
      new_index[static_cast<size_t>(index)] = 0;
    } else {
      in_range = false;
    }
  });
  if (!in_range) return invalid_argument(quoted(*part.name) + ": a stage refers to a tensor the file does not hold");
  for (size_t t = 0; t < source.size(); ++t) {
    if (new_index[t] == kUnused) continue;
    const auto [owner, fresh] = owners->emplace(source[t]->name, part.name);
    if (!fresh)
      return invalid_argument("tensor " + quoted(source[t]->name) +
                              (owner->second == part.name ? " is twice in " + quoted(*part.name)
                                                          : " is in both " + quoted(*owner->second) + " and " + quoted(*part.name)) +
                              ": tensor names must stay unique");
    new_index[t] = static_cast<uint32_t>(tensors->size());
    tensors->push_back(std::move(source[t]));
  }
  visit_stages(*part.model, [&](auto& index) {
    index = static_cast<std::remove_reference_t<decltype(index)>>(new_index[static_cast<size_t>(index)]);
  });
  return Status::ok();
}

// --- metadata --------------------------------------------------------------------------------------------

// Every part's entries, the first part's value where two disagree and the later one under
// "<its first stage>/<key>" (unless that key is taken too). A part's own "lineage" (it was bundled before)
// is always kept that way: the bundle's "lineage" describes this bundle.
void merge_metadata(std::vector<Part>& parts, std::vector<std::unique_ptr<fb::KeyValueT>>* out) {
  std::unordered_map<std::string, std::string> values;
  const auto add = [&](std::unique_ptr<fb::KeyValueT> entry) {
    if (values.emplace(entry->key, entry->value).second) out->push_back(std::move(entry));
  };
  for (Part& part : parts)
    for (auto& entry : part.model->metadata) {
      const auto known = values.find(entry->key);
      if (entry->key == "lineage" || (known != values.end() && known->second != entry->value))
        entry->key = std::string(kStageNames[part.stages.front()]) + "/" + entry->key;
      add(std::move(entry));
    }
}

// [{"file": ..., "stages": [...], "producer": ...}, ...]: which stage came from which file.
std::string lineage_json(const std::vector<Part>& parts) {
  std::string json = "[";
  for (const Part& part : parts) {
    if (json.size() > 1) json += ", ";
    json += "{\"file\": ";
    append_json_string(&json, *part.name);
    json += ", \"stages\": [";
    for (size_t s = 0; s < part.stages.size(); ++s) {
      if (s > 0) json += ", ";
      append_json_string(&json, kStageNames[part.stages[s]]);
    }
    json += "], \"producer\": ";
    append_json_string(&json, part.model->producer);
    json += "}";
  }
  return json + "]";
}

}  // namespace

Status Model::bundle(std::span<const BundlePart> parts, std::unique_ptr<Model>* out) {
  out->reset();
  if (parts.empty()) return invalid_argument("nothing to bundle: no stage files were given");
  // Which part each stage comes from: one part per stage, at least one stage per part.
  std::array<Part*, kStageCount> owner{};
  std::vector<Part> unpacked(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    const BundlePart& given = parts[p];
    if (!given.model) return invalid_argument(quoted(given.name) + " is not a loaded model");
    Part& part = unpacked[p];
    part.name = &given.name;
    const std::array<bool, kStageCount> has = {given.model->has_retrieval(), given.model->has_pre_ranking(), given.model->has_ranking()};
    for (size_t s = 0; s < kStageCount; ++s) {
      if (!has[s]) continue;
      if (owner[s])
        return invalid_argument("the " + std::string(kStageNames[s]) + " stage is in both " + quoted(*owner[s]->name) + " and " +
                                quoted(given.name) + ": each stage must come from one file");
      owner[s] = &part;
      part.stages.push_back(s);
    }
    if (part.stages.empty()) return invalid_argument(quoted(given.name) + " holds no stage");
    // The bundle's checksums are computed afresh over what it copies: a damaged part is refused first.
    if (Status s = given.model->verify(); !s) return {s.code(), quoted(given.name) + ": " + s.message()};
    part.model.reset(given.model->root_->UnPack());
  }
  for (size_t p = 1; p < unpacked.size(); ++p)
    if (Status s = check_same_features(unpacked.front(), unpacked[p]); !s) return s;

  auto model = std::make_unique<fb::ModelT>();
  // The item table of the ranking-like stages: one part's as it is, or two parts' joined.
  const Part* pre_ranking = owner[kPreRanking];
  Part* ranking = owner[kRanking];
  Part* table_part = ranking ? ranking : owner[kPreRanking];  // whose item table (and row order) the bundle keeps
  if (pre_ranking && ranking && pre_ranking != ranking) {
    if (Status s = join_item_tables(*pre_ranking, *ranking, &model->items); !s) return s;
  } else if (table_part) {
    model->items = std::move(table_part->model->items);
  }
  // Every item retrieval can return must mean the same item to the stages after it.
  if (const Part* retrieval = owner[kRetrieval]; retrieval && table_part) {
    const std::vector<std::string> item_keys = keys_of(*model->items->item_keys);
    const std::vector<std::string> catalogue_keys = keys_of(*retrieval->model->retrieval->catalogue->item_keys);
    if (const std::string* key = first_missing(catalogue_keys, rows_by_key(item_keys)))
      return invalid_argument("catalogue item " + quoted(*key) + " of " + quoted(*retrieval->name) + " is not in the item table of " +
                              quoted(*table_part->name) + ": every item retrieval returns must be known to the stages after it");
  }

  std::unordered_map<std::string, const std::string*> tensor_owners;
  for (Part& part : unpacked)
    if (Status s = carry_tensors(part, &model->tensors, &tensor_owners); !s) return s;
  for (Part& part : unpacked) {
    if (part.model->retrieval) model->retrieval = std::move(part.model->retrieval);
    if (part.model->pre_ranking) model->pre_ranking = std::move(part.model->pre_ranking);
    if (part.model->ranking) model->ranking = std::move(part.model->ranking);
  }
  merge_metadata(unpacked, &model->metadata);
  model->metadata.push_back(std::make_unique<fb::KeyValueT>());
  model->metadata.back()->key = "lineage";
  model->metadata.back()->value = lineage_json(unpacked);
  model->producer = std::string("funnel-sdk ") + kVersion + " bundle";
  model->features = std::move(unpacked.front().model->features);
  unpacked.clear();

  std::vector<uint8_t> bytes;
  if (Status s = pack_model(*model, &bytes); !s) return {s.code(), "the bundled model: " + s.message()};
  model.reset();
  std::unique_ptr<Model> bundled;
  // The parts were verified above; the packed file is verified once more so that the SDK never hands out a
  // bundle that fails its own checks (pack_model sets the format version and every checksum afresh).
  Status status = load_bytes(bytes.data(), bytes.size(), &bundled);
  if (status) status = bundled->verify();
  if (!status) return {status.code(), "the bundled model: " + status.message()};
  *out = std::move(bundled);
  return Status::ok();
}

}  // namespace funnel
