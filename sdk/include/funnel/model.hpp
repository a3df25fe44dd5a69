// A loaded Funnel model: verified once, immutable afterwards, safe to share between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "funnel/cascade.hpp"
#include "funnel/features.hpp"
#include "funnel/kernels.hpp"
#include "funnel/precision.hpp"
#include "funnel/ranker.hpp"
#include "funnel/search.hpp"
#include "funnel/status.hpp"
#include "funnel/tower.hpp"

namespace funnel {

namespace fb {
struct Model;
}

// What a feature is, as the file declares it (for inspection and for callers building requests).
struct FeatureInfo {
  std::string name;
  std::string kind;  // "categorical", "multi_categorical", "dense"
  uint32_t cardinality = 0;
  uint32_t vocabulary_size = 0;
  uint32_t hash_buckets = 0;
};

// One parameter tensor of the file, for inspection.
struct TensorInfo {
  std::string_view name;  // points into the model
  const char* dtype;      // "f32", "f16" or "i8"
  std::vector<uint64_t> shape;
  size_t bytes = 0;  // of its data
  const void* data = nullptr;  // the data in place, in the model's memory (aligned as the file stores it)
};

struct RetrieveOptions {
  size_t k = 10;
  // Catalogue keys that must not be returned (items the user has already seen).
  std::vector<std::string> exclude;
  // Threads that scan the catalogue (SearchOptions::threads): 1 keeps the call on the caller's thread, 0
  // uses every hardware thread. The result does not depend on it.
  size_t threads = 1;
};

// Changes to a model's items without retraining (Model::update_catalogue).
struct CatalogueUpdate {
  // Items to add, or to replace where the key exists: a key and the item's raw features. The file's item
  // tower embeds them (cold-start items) into the retrieval catalogue, stored in its precision; where the
  // file has a ranking stage, the same features are encoded into its item table.
  std::vector<std::pair<std::string, Features>> upsert;
  // Keys to remove from the catalogue and the item table; a key the model does not hold is an error.
  std::vector<std::string> remove;
};

class Model;

// One stage file of a bundle (Model::bundle).
struct BundlePart {
  std::string name;  // the file's path: in messages and in the bundle's lineage
  const Model* model = nullptr;
};

struct Recommendation {
  std::string_view key;  // points into the model; valid while the model lives
  uint32_t index;
  float score;
};

class Model {
 public:
  // Every loader leaves *out empty on failure. Loading verifies the file's structure and everything the
  // kernels index (tensor shapes, tower and stage wiring), in time independent of the tensor bytes and of
  // the item count. Checks that grow with the items (key tables sorted and distinct, item-table ids within
  // their features' cardinalities) are left to verify() and to the reads themselves, which are
  // bounds-checked: a file that fails them can make lookups miss or a ranking call return kCorruptModel,
  // but nothing reads outside the file.
  // Memory-maps the file (read-only) and verifies it.
  static Status load_file(const std::string& path, std::unique_ptr<Model>* out);
  // Copies the bytes into aligned memory the model owns, then verifies them.
  static Status load_bytes(const void* data, size_t size, std::unique_ptr<Model>* out);
  // Uses the bytes in place: the caller keeps them alive and unchanged for the model's lifetime.
  // They must be 32-byte aligned, as mmap and the WASM loader provide.
  static Status load_view(const void* data, size_t size, std::unique_ptr<Model>* out);

  ~Model();

  // A new model: this one with `update` applied to its catalogue and item table. This model is left as it
  // is, so threads serving it carry on while the new one is built; swap a shared_ptr to publish it. The
  // whole file is rebuilt and verified, which costs about one copy of it: batch updates rather than
  // applying them one item at a time. Kept rows keep their order; new keys come last. This model is verified
  // first (the new file's checksums are computed afresh over what it copies), and the new one is written
  // in the current format (kFormatVersion) whatever this one's.
  Status update_catalogue(const CatalogueUpdate& update, std::unique_ptr<Model>* out) const;
  // One model from stage files (`funnel bundle`): every stage of every part, each stage (retrieval,
  // pre-ranking, ranking) from exactly one part, with the tensors it references. Refused, with a message
  // naming the feature or item and the parts: parts whose features differ in any way (they must declare the
  // same features in the same order), a catalogue key missing from the item table of the ranking (or
  // pre-ranking) part, and, when pre-ranking and ranking come from two parts, item tables with other keys or
  // other ids in a column both hold (the bundle's item table has the columns of both); tensor names two
  // parts share. Each stage answers exactly as in its part. The metadata keeps every part's entries (where
  // two parts give a key different values, the later one is kept as "<its first stage>/<key>") and adds
  // "lineage", a JSON list of {"file", "stages", "producer"} per part. Each part is verified first (its
  // checksums: the bundle's are computed afresh over what it copies); the result is loaded and verified.
  static Status bundle(std::span<const BundlePart> parts, std::unique_ptr<Model>* out);
  // The model's bytes: the file it was loaded from, or an updated or bundled model's new file.
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  // Writes bytes() to `path` atomically (a temporary file beside it, then rename).
  Status save(const std::string& path) const;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // The checks load() leaves out, O(file size): first every checksum the file carries (format 3 on: each
  // tensor's, each key table's, the item table's, the whole file's; a mismatch names the tensor or table, a
  // missing one in a format 3 file is an error too), then each key table sorted and distinct and every
  // item-table id within its feature's cardinality. kCorruptModel on the first failure. A format 2 file
  // carries no checksums: it passes on the other checks alone (has_checksums() says which). The CLI's
  // commands run it before they answer; `funnel inspect` prints its result.
  Status verify() const;
  // Whether the file carries checksums (format 3 on), which verify() then checks.
  bool has_checksums() const;

  uint32_t format_version() const;
  std::string_view producer() const;
  size_t byte_size() const { return size_; }
  std::vector<std::pair<std::string, std::string>> metadata() const;

  size_t tensor_count() const;
  TensorInfo tensor_info(size_t index) const;  // index < tensor_count()

  size_t feature_count() const;
  FeatureInfo feature_info(size_t index) const;
  // -1 when the model has no such feature.
  int feature_index(std::string_view name) const;

  bool has_retrieval() const { return has_retrieval_; }
  const TowerView& user_tower() const { return user_tower_; }
  const TowerView& item_tower() const { return item_tower_; }
  size_t catalogue_size() const { return catalogue_rows_; }
  uint32_t embedding_dim() const { return catalogue_dim_; }
  // The catalogue's rows as the file stores them: f32, f16 or int8 with per-row scales.
  const EmbeddingRows& catalogue_rows() const { return catalogue_view_; }
  Precision catalogue_precision() const { return catalogue_view_.precision; }
  // Exact f32 rows [catalogue_size(), embedding_dim()]: the rows themselves in an f32 catalogue, the re-scoring
  // rows of a quantised one that ships them, else null.
  const float* catalogue_embeddings() const { return catalogue_; }
  // Row `index` (< catalogue_size()) as embedding_dim() floats: the exact row where the file has one, else
  // the stored row decoded.
  void catalogue_row(size_t index, float* out) const;
  std::string_view item_key(size_t index) const;
  // -1 when the catalogue has no such key.
  int64_t find_item(std::string_view key) const;

  // Raw values -> ids through the file's vocabularies, for the features `tower` reads. A feature the
  // tower needs but `raw` lacks is an error naming it; so is a name that is no feature of this model, a
  // number that is not finite (check_feature_number), a string that reads as one ("nan", "inf") given to a
  // dense or bucketized feature, and a dense value that overflows a float once normalised.
  // Values outside the vocabulary map to the out-of-vocabulary id.
  Status encode(const Features& raw, const TowerView& tower, EncodedFeatures* out) const;

  // The user tower's output. Every API that answers with an embedding or a score refuses to answer with one
  // that is not finite (InvalidArgument for an embedding, which features too large for the model or
  // non-finite parameters can cause; CorruptModel for a catalogue row that scores so).
  Status user_embedding(const Features& user, std::vector<float>* out) const;
  // An item's embedding from its raw features, through the item tower the file ships: for an item the
  // catalogue lacks (a cold-start item), in the same space as the catalogue and the users. For a catalogue
  // item's own features it equals the catalogue's row (the catalogue was computed the same way).
  Status item_embedding(const Features& item, std::vector<float>* out) const;
  // Inner products of `query` (embedding_dim() floats) with every catalogue item, in the catalogue's
  // precision.
  void score_catalogue(const float* query, float* scores) const;
  // The best catalogue rows for an embedding (funnel/search.hpp); a quantised catalogue with exact rows is
  // re-scored against them (options.exact is set by the model). Errors as search()'s: a query or a hit that
  // is not finite.
  Status search_catalogue(const float* query, const SearchOptions& options, std::vector<Hit>* hits) const;
  Status retrieve(const Features& user, const RetrieveOptions& options, std::vector<Recommendation>* out) const;
  // retrieve() for many users at once: their embeddings are scored in one pass over the catalogue
  // (search_batch), much faster per user than one call each. options.exclude applies to every user.
  Status retrieve_batch(std::span<const Features> users, const RetrieveOptions& options,
                        std::vector<std::vector<Recommendation>>* out) const;

  // The ranking stage: click probabilities of `candidates` (item keys) for a user with raw features and
  // a behaviour sequence (item keys, oldest first), in candidate order. An unknown candidate is an
  // error; an unknown behaviour counts with out-of-vocabulary features.
  bool has_ranking() const { return ranking_.present; }
  const RankerView& ranker() const { return ranking_.view; }
  Status rank(const Features& user, std::span<const std::string> behaviours, std::span<const std::string> candidates,
              std::vector<float>* probabilities) const;

  // The pre-ranking stage (the AutoFAS student, between retrieval and ranking): the same inputs and the same
  // forward pass as the ranking stage without co-action pairs, over the same item table; prerank() means
  // what rank() means, with the pre-ranking stage's parameters.
  bool has_pre_ranking() const { return pre_ranking_.present; }
  const RankerView& pre_ranker() const { return pre_ranking_.view; }
  Status prerank(const Features& user, std::span<const std::string> behaviours, std::span<const std::string> candidates,
                 std::vector<float>* probabilities) const;

  // The whole cascade in one call (funnel/cascade.hpp): retrieval, pre-ranking, ranking, with per-stage timings.
  Status recommend(const Features& user, const CascadeOptions& options, CascadeResult* out) const;

  // The item table the ranking and pre-ranking stages read candidates and behaviours from.
  size_t item_table_size() const;
  // -1 when the item table has no such key.
  int64_t find_ranking_item(std::string_view key) const;
  // The key of item-table row `index` (< item_table_size()); points into the model.
  std::string_view ranking_item_key(size_t index) const;
  // The model feature index of an item-table column.
  uint32_t item_column_feature(size_t column) const;
  // Encoded item-table rows for `keys` (ranker().item_columns ids each).
  Status encode_items(std::span<const std::string> keys, bool unknown_is_error, std::vector<uint32_t>* ids) const;

 private:
  Model() = default;
  static Status open(std::shared_ptr<void> storage, const uint8_t* data, size_t size, std::unique_ptr<Model>* out);
  // Checks the file and binds the views below (sdk/src/model_binding.cpp).
  friend class ModelBinding;
  // A ranking-like stage: its view and, per model feature, whether its user side reads it.
  struct RankingStageState {
    explicit RankingStageState(const char* stage) : name(stage) {}
    bool present = false;
    const char* name;  // "ranking" or "pre-ranking", for messages
    RankerView view;
    std::vector<uint8_t> user_features;
  };
  Status encode_used(const Features& raw, std::span<const uint8_t> used, EncodedFeatures* out) const;
  Status tower_embedding(const TowerView& tower, const Features& raw, std::vector<float>* out) const;
  // The retrieval stage's best k catalogue items for a user, leaving out `exclude` and, when `allow` is not
  // empty, everything not in it (unknown keys are ignored). Shared by retrieve() and recommend().
  Status top_items(const Features& user, size_t k, std::span<const std::string> exclude, std::span<const std::string> allow,
                   size_t threads, std::vector<Hit>* hits) const;
  // One byte per catalogue row: 1 for rows left out (exclude, or not in a non-empty allow list).
  std::vector<uint8_t> skip_mask(std::span<const std::string> exclude, std::span<const std::string> allow) const;
  // Model::rank and Model::prerank: `stage` scores the candidates, with the choice of what an unknown
  // candidate means: an error, or out-of-vocabulary features (a retrieved item the item table lacks).
  Status rank_candidates(const RankingStageState& stage, const Features& user, std::span<const std::string> behaviours,
                         std::span<const std::string> candidates, bool unknown_candidate_is_error,
                         std::vector<float>* probabilities) const;

  std::shared_ptr<void> storage_;  // keeps the mapping or the copy alive
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  const fb::Model* root_ = nullptr;
  bool has_retrieval_ = false;
  TowerView user_tower_;
  TowerView item_tower_;
  const float* catalogue_ = nullptr;  // exact f32 rows, or null
  EmbeddingRows catalogue_view_;
  const float* catalogue_exact_ = nullptr;  // a quantised catalogue's re-scoring rows
  size_t catalogue_rows_ = 0;
  uint32_t catalogue_dim_ = 0;
  RankingStageState ranking_{"ranking"}, pre_ranking_{"pre-ranking"};
};

}  // namespace funnel
