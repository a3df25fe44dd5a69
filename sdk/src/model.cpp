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
#include <limits>

#include "funnel/encoding.hpp"
#include "funnel/funnel.hpp"
#include "finite.hpp"
#include "funnel_generated.h"
#include "checksum.hpp"
#include "model_binding.hpp"
#include "verifier_options.hpp"
#include "string_table.hpp"

namespace funnel {

namespace {

// FlatBuffers cannot address more than 2 GiB; anything claiming more is corrupt before we look further.
constexpr size_t kMaxFileSize = size_t{1} << 31;
constexpr size_t kRequiredAlignment = 32;
// Why a model computes a number that is not finite from inputs that are.
constexpr const char* kNonFiniteCause = " (features too large for the model, or parameters that are not finite)";

// A categorical feature whose numbers fall into buckets (encoding.hpp, KeyRule).
bool bucketized(const fb::FeatureSpec& spec) { return spec.boundaries() && spec.boundaries()->size() > 0 && spec.hash_buckets() == 0; }

const char* kind_name(fb::FeatureKind kind) {
  switch (kind) {
    case fb::FeatureKind::Categorical: return "categorical";
    case fb::FeatureKind::MultiCategorical: return "multi_categorical";
    case fb::FeatureKind::Dense: return "dense";
  }
  return "unknown";
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
  flatbuffers::Verifier verifier(data, size, model_verifier_options());
  if (!fb::VerifyModelBuffer(verifier))
    return corrupt("FlatBuffers verification failed: the file is truncated or damaged");
  std::unique_ptr<Model> model(new Model());
  model->storage_ = std::move(storage);
  model->data_ = data;
  model->size_ = size;
  model->root_ = fb::GetModel(data);
  if (Status status = ModelBinding::bind(*model); !status) return status;
  *out = std::move(model);
  return Status::ok();
}

Status Model::verify() const {
  // The checksums first: where bytes changed, the message names the tensor or table that holds them.
  if (Status s = verify_checksums(*root_, data_, size_); !s) return s;
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

bool Model::has_checksums() const { return has_file_checksum(*root_); }

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
  for (const auto& [name, value] : raw.entries()) {
    const int index = feature_index(name);
    if (index < 0) {
      std::string known;
      for (size_t f = 0; f < count; ++f) known += (f ? ", " : "") + feature_info(f).name;
      return {StatusCode::kInvalidArgument, "unknown feature '" + name + "'; this model's features are: " + known};
    }
    // Numbers that are not finite, whether or not this call reads the feature: a number given to any
    // feature, or a string that strtod reads as one ("nan", "inf") given to a dense or bucketized feature.
    const fb::FeatureSpec& spec = *root_->features()->Get(static_cast<flatbuffers::uoffset_t>(index));
    double x = 0;
    if (value.type() == FeatureValue::Type::kNumber) x = value.number_value();
    else if (value.type() == FeatureValue::Type::kString && (spec.kind() == fb::FeatureKind::Dense || bucketized(spec)))
      parse_number(value.string_value(), &x);
    if (Status s = check_feature_number(name, x); !s) return s;
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
      const double z = (x - spec.mean()) / spec.stddev();
      // Checked before the conversion to float, which is undefined beyond a float's range; the message shows
      // what it would give.
      if (!(std::fabs(z) <= std::numeric_limits<float>::max()))
        return not_finite(StatusCode::kInvalidArgument, std::isnan(z) ? z : std::copysign(HUGE_VAL, z), "",
                          "feature '%.*s' = %.9g once normalised", static_cast<int>(name.size()), name.data(), x);
      out->dense[f] = static_cast<float>(z);
      continue;
    }

    KeyRule rule{spec.prefix_length(), spec.hash_buckets(), {}, spec.oov_id()};
    if (spec.boundaries()) rule.boundaries = {spec.boundaries()->data(), spec.boundaries()->size()};
    const auto id_of_key = [&spec, &rule](std::string_view raw) -> uint32_t {
      return encode_key(rule, raw, [&spec](std::string_view key) {
        const int64_t position = StringTableView(spec.values()).find(key);
        return position < 0 ? spec.oov_id() : static_cast<uint32_t>(position + 1);
      });
    };
    const auto id_of_number = [&](double x) -> uint32_t {
      if (bucketized(spec)) return bucketize({spec.boundaries()->data(), spec.boundaries()->size()}, x);
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
  out->clear();
  if (!has_retrieval_) return {StatusCode::kInvalidArgument, "this model has no retrieval stage"};
  EncodedFeatures encoded;
  if (Status s = encode(raw, tower, &encoded); !s) return s;
  std::vector<float> scratch(tower.scratch_size());
  out->resize(tower.output_dim());
  tower_forward(tower, encoded, scratch.data(), out->data());
  if (const size_t d = first_non_finite(out->data(), out->size()); d < out->size()) {
    const Status s = not_finite(StatusCode::kInvalidArgument, (*out)[d], kNonFiniteCause, "dimension %zu of the %s embedding", d,
                                &tower == &user_tower_ ? "user" : "item");
    out->clear();  // no embedding that is not finite leaves the SDK
    return s;
  }
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

Status Model::search_catalogue(const float* query, const SearchOptions& options, std::vector<Hit>* hits) const {
  SearchOptions exact_options = options;
  exact_options.exact = catalogue_exact_;
  return search(catalogue_view_, query, exact_options, hits);
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
  return search_catalogue(query.data(), search_options, hits);
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
  if (Status s = search_batch(catalogue_view_, queries.data(), users.size(), search_options, &hits); !s) return s;
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
  info.data = tensor->data()->data();
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
  for (size_t c = 0; c < candidates.size(); ++c) {
    float& p = (*probabilities)[c];
    if (!std::isfinite(p)) {
      const Status s = not_finite(StatusCode::kInvalidArgument, p, kNonFiniteCause, "the %s logit of candidate '%s'", stage.name,
                                  candidates[c].c_str());
      probabilities->clear();
      return s;
    }
    p = 1.0f / (1.0f + std::exp(-p));
  }
  return Status::ok();
}

}  // namespace funnel
