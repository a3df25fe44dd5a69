// Datasets: entity tables (users, items) with encoded features, and timestamped interactions, read
// from delimited files through a small JSON description (docs/dataset-format.md).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "funnel/features.hpp"
#include "train/core/id_lists.hpp"

namespace funnel::train {

enum class FeatureKind { kCategorical, kMultiCategorical, kDense };

const char* feature_kind_name(FeatureKind kind);

// How one feature is read from a row and encoded.
struct FeatureDef {
  std::string name;
  FeatureKind kind = FeatureKind::kCategorical;
  int column = -1;  // source column (0-based)
  // Read-time extraction, trainer only: the year of a date string ("01-Jan-1995" -> "1995"), the part
  // before the first `first` ("12|7|9" -> "12"), or 0/1 flag columns turned into a list of names
  // (MovieLens genres).
  bool extract_year = false;
  std::string first;
  int flags_first_column = -1;
  std::vector<std::string> flag_names;
  // Encoding rules that ship in the model file, so the SDK applies them to raw values too.
  std::vector<float> boundaries;
  uint32_t prefix_length = 0;
  uint32_t hash_buckets = 0;
  std::string separator;
};

// One encoded feature of an entity table: ids of row r are ids[offsets[r] .. offsets[r + 1]).
struct FeatureColumn {
  FeatureDef def;
  std::vector<std::string> vocabulary;  // id i + 1 is vocabulary[i]; id 0 is out-of-vocabulary
  uint32_t cardinality = 1;
  std::vector<uint32_t> offsets{0};
  std::vector<uint32_t> ids;
  std::vector<float> dense;  // normalised, for dense features
  float mean = 0.0f;
  float stddev = 1.0f;

  std::span<const uint32_t> ids_of(size_t row) const { return {ids.data() + offsets[row], ids.data() + offsets[row + 1]}; }
  // The lists of the given rows, as the layers read them.
  IdLists lists(std::span<const uint32_t> rows) const { return {offsets.data(), ids.data(), rows}; }
};

struct EntityTable {
  std::string name;  // "user" or "item"
  std::vector<std::string> keys;
  std::unordered_map<std::string, uint32_t> index;
  std::vector<FeatureColumn> features;
  std::vector<Features> raw;  // raw values per row, as an application would pass them to the SDK

  size_t size() const { return keys.size(); }
};

struct Interaction {
  uint32_t user;
  uint32_t item;
  int64_t timestamp;
};

struct Dataset {
  std::string name;
  EntityTable users;
  EntityTable items;
  std::vector<Interaction> interactions;
};

// Builds an entity table row by row, encoding every feature by its definition (the readers' common path).
class EntityTableBuilder {
 public:
  // Gives the raw field of a column; throws a located DataError when the row has no such column.
  using FieldReader = std::function<const std::string&(size_t column, const std::string& what)>;

  EntityTableBuilder(std::string name, std::vector<FeatureDef> defs);
  // Adds row `key`; a duplicate key or a bad value throws a DataError that starts with `where`.
  void add(const std::string& key, const FieldReader& read, const std::string& where);
  size_t size() const { return table_.size(); }
  EntityTable finish();

 private:
  EntityTable table_;
  std::vector<std::unordered_map<std::string, uint32_t>> vocabularies_;
  std::vector<std::vector<double>> dense_values_;
};

// A dataset description file: its JSON, its name ("name", or the file's stem) and the folder its file paths
// are relative to ("root", itself relative to the description's folder, or `root_override` when not empty).
struct DatasetDescription {
  std::string path;
  std::string name;
  std::string root;
  nlohmann::json json;
};

DatasetDescription read_dataset_description(const std::string& path, const std::string& root_override);

// Calls `line(text, number)` for every non-empty line of a text file, gzip-compressed or not, with a
// trailing \r dropped; numbers count from 1 and include the empty lines.
void for_each_line(const std::string& path, const std::function<void(const std::string& text, size_t number)>& line);

// The "features" array of a users or items section (docs/dataset-format.md), for the files' readers and for
// in-memory tables alike (column_source.hpp).
std::vector<FeatureDef> parse_feature_defs(const nlohmann::json& section, const std::string& where);
// The table of an entity without a file of its own: one categorical feature, "<name>_id", from its keys.
EntityTable key_only_table(const std::string& name, const std::vector<std::string>& keys, const std::string& where);
// Refuses a feature name that users and items both use.
void check_distinct_feature_names(const Dataset& data, const std::string& where);

// `text` as a whole number within int64_t ("inf", "1e30" and "1.5" are refused: the cast would be undefined
// or lossy). Throws DataError "<where>: '<text>' is not an integer ...".
int64_t parse_integer(const std::string& text, const std::string& where);

// The interactions file as read: its path and the user's column (for located errors).
struct InteractionsFile {
  std::string path;
  size_t user_column = 0;
};
using InteractionRow = std::function<void(const std::string& user, const std::string& item, int64_t timestamp, size_t line)>;
// Streams the description's interactions in file order, one call per interaction (a sequences line gives
// several), without keeping any: the common path of load_dataset and `funnel prepare` (prepare.hpp).
// Throws DataError naming the file, line and field of a bad row, and when there is no interaction.
InteractionsFile for_each_interaction(const DatasetDescription& described, const InteractionRow& row);
// The "users" or "items" table of a description; a section without a file is a key-only table of the keys
// the interactions gave, in order of first appearance.
EntityTable read_entity_table(const DatasetDescription& described, const char* section, const std::string& name,
                              const std::vector<std::string>& keys_from_interactions);
// "<file>:<line>: ... key '<key>' is not in the users (items) file".
std::string missing_key_message(const InteractionsFile& file, size_t line, bool user, const std::string& key);

// Reads the dataset that `description_path` describes. File paths in it are relative to its "root"
// (itself relative to the description's folder), or to `root_override` when that is not empty.
// Throws DataError naming the file, line and field of the first problem.
Dataset load_dataset(const std::string& description_path, const std::string& root_override = "");

// Builds the SDK's encoded form of one entity row (ids indexed by the model's feature order: users'
// features first, then items').
void encode_row(const Dataset& data, const EntityTable& table, size_t row, EncodedFeatures* out);

// Index of the table's first feature in the model's feature order.
size_t feature_offset(const Dataset& data, const EntityTable& table);

}  // namespace funnel::train
