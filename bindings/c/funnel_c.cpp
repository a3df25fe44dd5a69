#include "funnel_c.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "funnel/funnel.hpp"

struct FunnelModel {
  std::unique_ptr<funnel::Model> model;
  // Copies made at load time, so that the ABI can hand out pointers that live as long as the model.
  std::string producer;
  std::vector<funnel::FeatureInfo> features;
  std::vector<std::pair<std::string, std::string>> metadata;
};

struct FunnelFeatures {
  funnel::Features features;
};

namespace {

thread_local std::string last_error;

FunnelStatus fail(FunnelStatus code, std::string message) {
  last_error = std::move(message);
  return code;
}

// FunnelStatus mirrors funnel::StatusCode name for name and value for value (the header promises FFI users
// the numbers). A code added to either enum alone stops the build (-Wswitch is an error in these two
// switches), and a value that differs fails the static_assert below.
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wswitch"
constexpr FunnelStatus c_status(funnel::StatusCode code) {
  switch (code) {
    case funnel::StatusCode::kOk: return FUNNEL_OK;
    case funnel::StatusCode::kInvalidArgument: return FUNNEL_INVALID_ARGUMENT;
    case funnel::StatusCode::kNotFound: return FUNNEL_NOT_FOUND;
    case funnel::StatusCode::kIoError: return FUNNEL_IO_ERROR;
    case funnel::StatusCode::kCorruptModel: return FUNNEL_CORRUPT_MODEL;
    case funnel::StatusCode::kUnsupported: return FUNNEL_UNSUPPORTED;
  }
  return FUNNEL_INVALID_ARGUMENT;  // not reached: the switch names every code
}
constexpr funnel::StatusCode sdk_status(FunnelStatus code) {
  switch (code) {
    case FUNNEL_OK: return funnel::StatusCode::kOk;
    case FUNNEL_INVALID_ARGUMENT: return funnel::StatusCode::kInvalidArgument;
    case FUNNEL_NOT_FOUND: return funnel::StatusCode::kNotFound;
    case FUNNEL_IO_ERROR: return funnel::StatusCode::kIoError;
    case FUNNEL_CORRUPT_MODEL: return funnel::StatusCode::kCorruptModel;
    case FUNNEL_UNSUPPORTED: return funnel::StatusCode::kUnsupported;
  }
  return funnel::StatusCode::kInvalidArgument;  // not reached: the switch names every code
}
#pragma GCC diagnostic pop
constexpr bool mirrored(funnel::StatusCode code) {
  return sdk_status(c_status(code)) == code && static_cast<int>(c_status(code)) == static_cast<int>(code);
}
static_assert(mirrored(funnel::StatusCode::kOk) && mirrored(funnel::StatusCode::kInvalidArgument) &&
                  mirrored(funnel::StatusCode::kNotFound) && mirrored(funnel::StatusCode::kIoError) &&
                  mirrored(funnel::StatusCode::kCorruptModel) && mirrored(funnel::StatusCode::kUnsupported),
              "FunnelStatus (funnel_c.h) and funnel::StatusCode (funnel/status.hpp) must agree value for value");

FunnelStatus report(const funnel::Status& status) {
  if (status.is_ok()) return FUNNEL_OK;
  return fail(c_status(status.code()), status.message());
}

// Copies a C array of keys; a NULL entry is an error naming the function, the array and the position.
FunnelStatus copy_keys(const char* function, const char* const* array, size_t count, const char* what, std::vector<std::string>* out) {
  if (count > 0 && !array) return fail(FUNNEL_INVALID_ARGUMENT, std::string(function) + ": " + what + " is NULL");
  for (size_t i = 0; i < count; ++i) {
    if (!array[i]) return fail(FUNNEL_INVALID_ARGUMENT, std::string(function) + ": " + what + "[" + std::to_string(i) + "] is NULL");
    out->emplace_back(array[i]);
  }
  return FUNNEL_OK;
}

// funnel_model_user_embedding and funnel_model_item_embedding: one tower's output for raw features, written to `out`.
FunnelStatus embed(funnel::Status (funnel::Model::*tower)(const funnel::Features&, std::vector<float>*) const, const char* function,
                   const FunnelModel* model, const FunnelFeatures* features, float* out) {
  if (!model || !features || !out) return fail(FUNNEL_INVALID_ARGUMENT, std::string(function) + ": NULL argument");
  std::vector<float> embedding;
  if (FunnelStatus s = report((model->model.get()->*tower)(features->features, &embedding)); s != FUNNEL_OK) return s;
  std::copy(embedding.begin(), embedding.end(), out);
  return FUNNEL_OK;
}

// funnel_model_rank and funnel_model_prerank: one ranking-like stage's click probabilities, written to
// out_probabilities.
FunnelStatus rank_with(funnel::Status (funnel::Model::*stage)(const funnel::Features&, std::span<const std::string>,
                                                              std::span<const std::string>, std::vector<float>*) const,
                       const char* function, const FunnelModel* model, const FunnelFeatures* user, const char* const* behaviours,
                       size_t behaviour_count, const char* const* candidates, size_t candidate_count, float* out_probabilities) {
  if (!model || !user || (behaviour_count > 0 && !behaviours) || (candidate_count > 0 && (!candidates || !out_probabilities)))
    return fail(FUNNEL_INVALID_ARGUMENT, std::string(function) + ": NULL argument");
  std::vector<std::string> behaviour_keys, candidate_keys;
  if (FunnelStatus s = copy_keys(function, behaviours, behaviour_count, "behaviours", &behaviour_keys); s != FUNNEL_OK) return s;
  if (FunnelStatus s = copy_keys(function, candidates, candidate_count, "candidates", &candidate_keys); s != FUNNEL_OK) return s;
  std::vector<float> probabilities;
  const funnel::Model& m = *model->model;
  if (FunnelStatus s = report((m.*stage)(user->features, behaviour_keys, candidate_keys, &probabilities)); s != FUNNEL_OK) return s;
  std::copy(probabilities.begin(), probabilities.end(), out_probabilities);
  return FUNNEL_OK;
}

FunnelStatus wrap(funnel::Status status, std::unique_ptr<funnel::Model> model, FunnelModel** out) {
  if (!status) return report(status);
  auto* handle = new FunnelModel{std::move(model), {}, {}, {}};
  handle->producer = std::string(handle->model->producer());
  for (size_t f = 0; f < handle->model->feature_count(); ++f) handle->features.push_back(handle->model->feature_info(f));
  handle->metadata = handle->model->metadata();
  *out = handle;
  return FUNNEL_OK;
}

}  // namespace

extern "C" {

const char* funnel_version(void) { return funnel::kVersion; }

const char* funnel_last_error(void) { return last_error.c_str(); }

FunnelStatus funnel_model_load_file(const char* path, FunnelModel** out) {
  if (!path || !out) return fail(FUNNEL_INVALID_ARGUMENT, "funnel_model_load_file: path and out must not be NULL");
  *out = nullptr;
  std::unique_ptr<funnel::Model> model;
  funnel::Status status = funnel::Model::load_file(path, &model);
  return wrap(std::move(status), std::move(model), out);
}

FunnelStatus funnel_model_load_bytes(const void* data, size_t size, FunnelModel** out) {
  if (!data || !out) return fail(FUNNEL_INVALID_ARGUMENT, "funnel_model_load_bytes: data and out must not be NULL");
  *out = nullptr;
  std::unique_ptr<funnel::Model> model;
  funnel::Status status = funnel::Model::load_bytes(data, size, &model);
  return wrap(std::move(status), std::move(model), out);
}

void funnel_model_free(FunnelModel* model) { delete model; }

uint32_t funnel_model_format_version(const FunnelModel* model) { return model ? model->model->format_version() : 0; }

const char* funnel_model_producer(const FunnelModel* model) { return model ? model->producer.c_str() : nullptr; }

size_t funnel_model_byte_size(const FunnelModel* model) { return model ? model->model->byte_size() : 0; }

int funnel_model_has_retrieval(const FunnelModel* model) { return model && model->model->has_retrieval() ? 1 : 0; }

size_t funnel_model_feature_count(const FunnelModel* model) { return model ? model->features.size() : 0; }

FunnelStatus funnel_model_feature_info(const FunnelModel* model, size_t index, FunnelFeatureInfo* out) {
  if (!model || !out) return fail(FUNNEL_INVALID_ARGUMENT, "funnel_model_feature_info: NULL argument");
  if (index >= model->features.size())
    return fail(FUNNEL_NOT_FOUND, "funnel_model_feature_info: no feature " + std::to_string(index) + " (the model has " +
                                      std::to_string(model->features.size()) + ")");
  const funnel::FeatureInfo& info = model->features[index];
  *out = {info.name.c_str(), info.kind.c_str(), info.cardinality, info.vocabulary_size, info.hash_buckets};
  return FUNNEL_OK;
}

size_t funnel_model_tensor_count(const FunnelModel* model) { return model ? model->model->tensor_count() : 0; }

FunnelStatus funnel_model_tensor_info(const FunnelModel* model, size_t index, FunnelTensorInfo* out) {
  if (!model || !out) return fail(FUNNEL_INVALID_ARGUMENT, "funnel_model_tensor_info: NULL argument");
  if (index >= model->model->tensor_count())
    return fail(FUNNEL_NOT_FOUND, "funnel_model_tensor_info: no tensor " + std::to_string(index) + " (the model has " +
                                      std::to_string(model->model->tensor_count()) + ")");
  const funnel::TensorInfo info = model->model->tensor_info(index);
  *out = {};
  out->name = info.name.data();
  out->name_length = info.name.size();
  out->dtype = info.dtype;
  out->rank = info.shape.size();
  for (size_t d = 0; d < info.shape.size() && d < FUNNEL_MAX_TENSOR_RANK; ++d) out->shape[d] = info.shape[d];
  out->bytes = info.bytes;
  return FUNNEL_OK;
}

size_t funnel_model_metadata_count(const FunnelModel* model) { return model ? model->metadata.size() : 0; }

FunnelStatus funnel_model_metadata(const FunnelModel* model, size_t index, const char** key, const char** value) {
  if (!model || !key || !value) return fail(FUNNEL_INVALID_ARGUMENT, "funnel_model_metadata: NULL argument");
  if (index >= model->metadata.size())
    return fail(FUNNEL_NOT_FOUND, "funnel_model_metadata: no entry " + std::to_string(index) + " (the model has " +
                                      std::to_string(model->metadata.size()) + ")");
  *key = model->metadata[index].first.c_str();
  *value = model->metadata[index].second.c_str();
  return FUNNEL_OK;
}

size_t funnel_model_catalogue_size(const FunnelModel* model) { return model ? model->model->catalogue_size() : 0; }

size_t funnel_model_embedding_dim(const FunnelModel* model) { return model ? model->model->embedding_dim() : 0; }

const char* funnel_model_item_key(const FunnelModel* model, size_t index, size_t* length) {
  if (!model || index >= model->model->catalogue_size()) return nullptr;
  const std::string_view key = model->model->item_key(index);
  if (length) *length = key.size();
  return key.data();
}

FunnelFeatures* funnel_features_new(void) { return new FunnelFeatures(); }

void funnel_features_free(FunnelFeatures* features) { delete features; }

FunnelStatus funnel_features_set_string(FunnelFeatures* features, const char* name, const char* value) {
  if (!features || !name || !value) return fail(FUNNEL_INVALID_ARGUMENT, "funnel_features_set_string: NULL argument");
  features->features.set(name, std::string(value));
  return FUNNEL_OK;
}

FunnelStatus funnel_features_set_number(FunnelFeatures* features, const char* name, double value) {
  if (!features || !name) return fail(FUNNEL_INVALID_ARGUMENT, "funnel_features_set_number: NULL argument");
  if (FunnelStatus s = report(funnel::check_feature_number(name, value)); s != FUNNEL_OK) return s;
  features->features.set(name, value);
  return FUNNEL_OK;
}

FunnelStatus funnel_features_set_empty_list(FunnelFeatures* features, const char* name) {
  if (!features || !name) return fail(FUNNEL_INVALID_ARGUMENT, "funnel_features_set_empty_list: NULL argument");
  features->features.set(name, std::vector<std::string>{});
  return FUNNEL_OK;
}

FunnelStatus funnel_features_add_to_list(FunnelFeatures* features, const char* name, const char* value) {
  if (!features || !name || !value) return fail(FUNNEL_INVALID_ARGUMENT, "funnel_features_add_to_list: NULL argument");
  std::vector<std::string> values;
  if (const funnel::FeatureValue* existing = features->features.find(name)) {
    if (existing->type() != funnel::FeatureValue::Type::kList)
      return fail(FUNNEL_INVALID_ARGUMENT, std::string("feature '") + name + "' already holds a single value");
    values = existing->list_value();
  }
  values.emplace_back(value);
  features->features.set(name, std::move(values));
  return FUNNEL_OK;
}

FunnelStatus funnel_model_user_embedding(const FunnelModel* model, const FunnelFeatures* user, float* out) {
  return embed(&funnel::Model::user_embedding, "funnel_model_user_embedding", model, user, out);
}

FunnelStatus funnel_model_item_embedding(const FunnelModel* model, const FunnelFeatures* item, float* out) {
  return embed(&funnel::Model::item_embedding, "funnel_model_item_embedding", model, item, out);
}

FunnelStatus funnel_model_retrieve(const FunnelModel* model, const FunnelFeatures* user, size_t k, const char* const* exclude,
                                   size_t exclude_count, uint32_t* out_indices, float* out_scores, size_t* out_count) {
  if (!model || !user || !out_indices || !out_scores || !out_count || (exclude_count > 0 && !exclude))
    return fail(FUNNEL_INVALID_ARGUMENT, "funnel_model_retrieve: NULL argument");
  *out_count = 0;
  funnel::RetrieveOptions options;
  options.k = k;
  for (size_t i = 0; i < exclude_count; ++i) {
    if (!exclude[i]) return fail(FUNNEL_INVALID_ARGUMENT, "funnel_model_retrieve: exclude[" + std::to_string(i) + "] is NULL");
    options.exclude.emplace_back(exclude[i]);
  }
  std::vector<funnel::Recommendation> recommendations;
  if (FunnelStatus s = report(model->model->retrieve(user->features, options, &recommendations)); s != FUNNEL_OK) return s;
  for (size_t i = 0; i < recommendations.size(); ++i) {
    out_indices[i] = recommendations[i].index;
    out_scores[i] = recommendations[i].score;
  }
  *out_count = recommendations.size();
  return FUNNEL_OK;
}

const char* funnel_model_catalogue_precision(const FunnelModel* model) {
  return model ? funnel::precision_name(model->model->catalogue_precision()) : "f32";
}

FunnelStatus funnel_model_retrieve_batch(const FunnelModel* model, const FunnelFeatures* const* users, size_t user_count,
                                         size_t k, const char* const* exclude, size_t exclude_count, size_t threads,
                                         uint32_t* out_indices, float* out_scores, size_t* out_counts) {
  const char* name = "funnel_model_retrieve_batch";
  if (!model || (user_count > 0 && (!users || !out_indices || !out_scores || !out_counts)))
    return fail(FUNNEL_INVALID_ARGUMENT, std::string(name) + ": NULL argument");
  // Every count is 0 until its user is answered, so that a failed call leaves no stale count behind.
  std::fill_n(out_counts, user_count, size_t{0});
  std::vector<funnel::Features> batch;
  for (size_t u = 0; u < user_count; ++u) {
    if (!users[u]) return fail(FUNNEL_INVALID_ARGUMENT, std::string(name) + ": users[" + std::to_string(u) + "] is NULL");
    batch.push_back(users[u]->features);
  }
  funnel::RetrieveOptions options;
  options.k = k;
  options.threads = threads;
  if (FunnelStatus s = copy_keys(name, exclude, exclude_count, "exclude", &options.exclude); s != FUNNEL_OK) return s;
  std::vector<std::vector<funnel::Recommendation>> results;
  if (FunnelStatus s = report(model->model->retrieve_batch(batch, options, &results)); s != FUNNEL_OK) return s;
  for (size_t u = 0; u < user_count; ++u) {
    for (size_t i = 0; i < results[u].size(); ++i) {
      out_indices[u * k + i] = results[u][i].index;
      out_scores[u * k + i] = results[u][i].score;
    }
    out_counts[u] = results[u].size();
  }
  return FUNNEL_OK;
}

FunnelStatus funnel_model_update_catalogue(const FunnelModel* model, const char* const* add_keys,
                                           const FunnelFeatures* const* add_features, size_t add_count,
                                           const char* const* remove_keys, size_t remove_count, FunnelModel** out) {
  const char* name = "funnel_model_update_catalogue";
  if (!model || !out || (add_count > 0 && (!add_keys || !add_features)))
    return fail(FUNNEL_INVALID_ARGUMENT, std::string(name) + ": NULL argument");
  *out = nullptr;
  funnel::CatalogueUpdate update;
  for (size_t i = 0; i < add_count; ++i) {
    if (!add_keys[i] || !add_features[i])
      return fail(FUNNEL_INVALID_ARGUMENT, std::string(name) + ": add_keys[" + std::to_string(i) + "] or add_features[" + std::to_string(i) + "] is NULL");
    update.upsert.emplace_back(add_keys[i], add_features[i]->features);
  }
  if (FunnelStatus s = copy_keys(name, remove_keys, remove_count, "remove_keys", &update.remove); s != FUNNEL_OK) return s;
  std::unique_ptr<funnel::Model> updated;
  funnel::Status status = model->model->update_catalogue(update, &updated);
  return wrap(std::move(status), std::move(updated), out);
}

const uint8_t* funnel_model_bytes(const FunnelModel* model, size_t* size) {
  if (!model) {
    if (size) *size = 0;
    return nullptr;
  }
  if (size) *size = model->model->bytes().size();
  return model->model->bytes().data();
}

FunnelStatus funnel_model_save(const FunnelModel* model, const char* path) {
  if (!model || !path) return fail(FUNNEL_INVALID_ARGUMENT, "funnel_model_save: NULL argument");
  return report(model->model->save(path));
}

FunnelStatus funnel_model_verify(const FunnelModel* model) {
  if (!model) return fail(FUNNEL_INVALID_ARGUMENT, "funnel_model_verify: NULL model");
  return report(model->model->verify());
}

int funnel_model_has_checksums(const FunnelModel* model) { return model && model->model->has_checksums() ? 1 : 0; }

int funnel_model_has_ranking(const FunnelModel* model) { return model && model->model->has_ranking() ? 1 : 0; }

FunnelStatus funnel_model_rank(const FunnelModel* model, const FunnelFeatures* user, const char* const* behaviours,
                               size_t behaviour_count, const char* const* candidates, size_t candidate_count,
                               float* out_probabilities) {
  return rank_with(&funnel::Model::rank, "funnel_model_rank", model, user, behaviours, behaviour_count, candidates,
                   candidate_count, out_probabilities);
}

int funnel_model_has_pre_ranking(const FunnelModel* model) { return model && model->model->has_pre_ranking() ? 1 : 0; }

FunnelStatus funnel_model_prerank(const FunnelModel* model, const FunnelFeatures* user, const char* const* behaviours,
                                  size_t behaviour_count, const char* const* candidates, size_t candidate_count,
                                  float* out_probabilities) {
  return rank_with(&funnel::Model::prerank, "funnel_model_prerank", model, user, behaviours, behaviour_count, candidates,
                   candidate_count, out_probabilities);
}

FunnelStatus funnel_model_recommend(const FunnelModel* model, const FunnelFeatures* user, const FunnelCascadeRequest* request,
                                    const char** out_keys, size_t* out_key_lengths, float* out_scores, size_t* out_count,
                                    FunnelCascadeTimings* out_timings) {
  if (!model || !user || !request || !out_keys || !out_key_lengths || !out_scores || !out_count)
    return fail(FUNNEL_INVALID_ARGUMENT, "funnel_model_recommend: NULL argument");
  *out_count = 0;
  funnel::CascadeOptions options;
  if (request->k > 0) options.k = request->k;
  if (request->retrieve_k > 0) options.retrieve_k = request->retrieve_k;
  if (request->prerank_k > 0) options.prerank_k = request->prerank_k;
  if (request->threads > 0) options.threads = request->threads;
  const char* name = "funnel_model_recommend";
  if (request->skip & ~size_t{FUNNEL_SKIP_PRE_RANKING | FUNNEL_SKIP_RANKING})
    return fail(FUNNEL_INVALID_ARGUMENT, "funnel_model_recommend: skip holds a flag other than FUNNEL_SKIP_PRE_RANKING and FUNNEL_SKIP_RANKING");
  options.skip_pre_ranking = request->skip & FUNNEL_SKIP_PRE_RANKING;
  options.skip_ranking = request->skip & FUNNEL_SKIP_RANKING;
  if (FunnelStatus s = copy_keys(name, request->behaviours, request->behaviour_count, "behaviours", &options.behaviours); s != FUNNEL_OK)
    return s;
  if (FunnelStatus s = copy_keys(name, request->candidates, request->candidate_count, "candidates", &options.candidates); s != FUNNEL_OK)
    return s;
  if (FunnelStatus s = copy_keys(name, request->exclude, request->exclude_count, "exclude", &options.exclude); s != FUNNEL_OK) return s;
  if (FunnelStatus s = copy_keys(name, request->allow, request->allow_count, "allow", &options.allow); s != FUNNEL_OK) return s;
  funnel::CascadeResult result;
  if (FunnelStatus s = report(model->model->recommend(user->features, options, &result)); s != FUNNEL_OK) return s;
  for (size_t i = 0; i < result.items.size(); ++i) {
    out_keys[i] = result.items[i].key.data();
    out_key_lengths[i] = result.items[i].key.size();
    out_scores[i] = result.items[i].score;
  }
  *out_count = result.items.size();
  if (out_timings) {
    const double absent = std::numeric_limits<double>::quiet_NaN();
    *out_timings = {absent, absent, result.milliseconds, absent};
    for (const funnel::StageReport& stage : result.stages)
      (stage.stage == "retrieval"     ? out_timings->retrieval_ms
       : stage.stage == "pre_ranking" ? out_timings->pre_ranking_ms
                                      : out_timings->ranking_ms) = stage.milliseconds;
  }
  return FUNNEL_OK;
}

}  // extern "C"
