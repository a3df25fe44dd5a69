#include "train/data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <type_traits>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include "train/core/errors.hpp"
#include "funnel/encoding.hpp"

namespace funnel::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* feature_kind_name(FeatureKind kind) {
  switch (kind) {
    case FeatureKind::kCategorical: return "categorical";
    case FeatureKind::kMultiCategorical: return "multi_categorical";
    case FeatureKind::kDense: return "dense";
  }
  return "unknown";
}

namespace {

struct FileSpec {
  std::string path;
  std::string delimiter = ",";
  char quote = '\0';
  bool header = false;
};

// Lines of a text file, gzip-compressed or not (zlib reads both).
class LineSource {
 public:
  explicit LineSource(const std::string& path) : file_(gzopen(path.c_str(), "rb")) {
    if (!file_) throw DataError(path + ": cannot open file");
    gzbuffer(file_, 1 << 16);
  }
  ~LineSource() { gzclose(file_); }
  LineSource(const LineSource&) = delete;
  LineSource& operator=(const LineSource&) = delete;

  bool next(std::string* line) {
    line->clear();
    char buffer[4096];
    while (gzgets(file_, buffer, sizeof buffer)) {
      line->append(buffer);
      if (!line->empty() && line->back() == '\n') {
        line->pop_back();
        return true;
      }
    }
    return !line->empty();
  }

 private:
  gzFile file_;
};

// A delimited file read line by line; every error names file, line and field. Unless told that rows vary
// in length (the sequences format), every row must have as many fields as the first line (the header, when
// there is one): a stray delimiter would otherwise shift the columns after it without a word.
class DelimitedReader {
 public:
  explicit DelimitedReader(const FileSpec& spec, bool same_field_count = true)
      : spec_(spec), in_(spec.path), same_field_count_(same_field_count) {
    if (spec.header && next()) header_line_ = line_number_;
  }

  bool next() {
    while (in_.next(&line_)) {
      ++line_number_;
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (line_.empty()) continue;
      split();
      check_field_count();
      return true;
    }
    return false;
  }

  const std::string& field(size_t index, const std::string& what) const {
    if (index >= fields_.size())
      throw DataError(where() + ": expected at least " + std::to_string(index + 1) + " fields (for " + what + "), found " +
                      std::to_string(fields_.size()));
    return fields_[index];
  }
  size_t field_count() const { return fields_.size(); }
  size_t line_number() const { return line_number_; }
  std::string where() const { return spec_.path + ":" + std::to_string(line_number_); }
  std::string where(size_t index, const std::string& what) const {
    return where() + ": field " + std::to_string(index + 1) + " (" + what + ")";
  }

 private:
  void split() {
    fields_.clear();
    std::string current;
    bool quoted = false;
    const std::string& delimiter = spec_.delimiter;
    for (size_t i = 0; i < line_.size(); ++i) {
      const char c = line_[i];
      if (spec_.quote && c == spec_.quote) {
        if (quoted && i + 1 < line_.size() && line_[i + 1] == spec_.quote) {
          current.push_back(c);
          ++i;
        } else {
          quoted = !quoted;
        }
      } else if (!quoted && line_.compare(i, delimiter.size(), delimiter) == 0) {
        fields_.push_back(std::move(current));
        current.clear();
        i += delimiter.size() - 1;
      } else {
        current.push_back(c);
      }
    }
    if (quoted) throw DataError(where() + ": unterminated quoted field");
    fields_.push_back(std::move(current));
  }

  void check_field_count() {
    if (!same_field_count_) return;
    if (expected_fields_ == 0) {
      expected_fields_ = fields_.size();
      expected_line_ = line_number_;
      return;
    }
    if (fields_.size() == expected_fields_) return;
    throw DataError(where() + ": expected " + std::to_string(expected_fields_) + " fields, as on line " + std::to_string(expected_line_) +
                    (expected_line_ == header_line_ ? " (the header)" : "") + ", found " + std::to_string(fields_.size()) +
                    " (a stray or missing delimiter '" + spec_.delimiter + "'?)");
  }

  FileSpec spec_;
  LineSource in_;
  std::string line_;
  size_t line_number_ = 0;
  std::vector<std::string> fields_;
  bool same_field_count_;
  size_t expected_fields_ = 0;  // the first line's count, 0 before it
  size_t expected_line_ = 0;
  size_t header_line_ = 0;  // 0: no header
};

template <typename T>
T get_or(const json& object, const char* key, T fallback, const std::string& where) {
  if (!object.contains(key)) return fallback;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // nlohmann/json converts 1e20 or 2.5 to an integer with a plain cast (undefined behaviour out of range):
    // only whole numbers in range are taken.
    const json& value = object.at(key);
    using Limits = std::numeric_limits<T>;
    if (value.is_number_unsigned() && value.get<uint64_t>() <= static_cast<uint64_t>(Limits::max())) return static_cast<T>(value.get<uint64_t>());
    if (value.is_number_integer() && !value.is_number_unsigned()) {
      const int64_t x = value.get<int64_t>();
      if (x >= static_cast<int64_t>(Limits::min()) && (x < 0 || static_cast<uint64_t>(x) <= static_cast<uint64_t>(Limits::max())))
        return static_cast<T>(x);
    }
    throw ConfigError(where + ": field '" + key + "' must be a whole number from " + std::to_string(Limits::min()) + " to " +
                      std::to_string(Limits::max()));
  }
  try {
    return object.at(key).get<T>();
  } catch (const json::exception&) {
    throw ConfigError(where + ": field '" + key + "' has the wrong type");
  }
}

FileSpec parse_file_spec(const json& object, const fs::path& root, const std::string& where) {
  FileSpec spec;
  if (!object.contains("path")) throw ConfigError(where + ": missing field 'path'");
  spec.path = (root / get_or<std::string>(object, "path", "", where)).lexically_normal().string();
  spec.delimiter = get_or<std::string>(object, "delimiter", ",", where);
  if (spec.delimiter.empty()) throw ConfigError(where + ": 'delimiter' must not be empty");
  const std::string quote = get_or<std::string>(object, "quote", spec.delimiter == "," ? "\"" : "", where);
  if (quote.size() > 1) throw ConfigError(where + ": 'quote' must be one character or empty");
  spec.quote = quote.empty() ? '\0' : quote[0];
  spec.header = get_or<bool>(object, "header", false, where);
  return spec;
}

FeatureDef parse_feature(const json& object, const std::string& where) {
  FeatureDef def;
  def.name = get_or<std::string>(object, "name", "", where);
  if (def.name.empty()) throw ConfigError(where + ": a feature needs a 'name'");
  const std::string here = where + " feature '" + def.name + "'";
  const std::string kind = get_or<std::string>(object, "kind", "categorical", here);
  if (kind == "categorical") def.kind = FeatureKind::kCategorical;
  else if (kind == "multi_categorical") def.kind = FeatureKind::kMultiCategorical;
  else if (kind == "dense") def.kind = FeatureKind::kDense;
  else throw ConfigError(here + ": unknown kind '" + kind + "' (categorical, multi_categorical, dense)");
  def.column = get_or<int>(object, "column", -1, here);
  def.extract_year = get_or<bool>(object, "extract_year", false, here);
  def.first = get_or<std::string>(object, "first", "", here);
  if (object.contains("flags")) {
    const json& flags = object.at("flags");
    def.flags_first_column = get_or<int>(flags, "first_column", -1, here + " flags");
    def.flag_names = get_or<std::vector<std::string>>(flags, "names", {}, here + " flags");
    if (def.flags_first_column < 0 || def.flag_names.empty())
      throw ConfigError(here + ": 'flags' needs 'first_column' and 'names'");
    if (def.kind != FeatureKind::kMultiCategorical) throw ConfigError(here + ": 'flags' makes a multi_categorical feature");
  } else if (def.column < 0) {
    throw ConfigError(here + ": needs a 'column' (0-based)");
  }
  def.boundaries = get_or<std::vector<float>>(object, "boundaries", {}, here);
  for (size_t i = 1; i < def.boundaries.size(); ++i)
    if (!(def.boundaries[i - 1] < def.boundaries[i])) throw ConfigError(here + ": 'boundaries' must be increasing");
  def.prefix_length = get_or<uint32_t>(object, "prefix", 0, here);
  def.hash_buckets = get_or<uint32_t>(object, "hash_buckets", 0, here);
  def.separator = get_or<std::string>(object, "separator", "", here);
  if (def.kind == FeatureKind::kDense && (!def.boundaries.empty() || def.hash_buckets || def.prefix_length))
    throw ConfigError(here + ": a dense feature takes no boundaries, prefix or hashing");
  return def;
}

// Encodes one raw value of a categorical feature with the SDK's rules; builds the vocabulary as it goes.
uint32_t encode_value(FeatureColumn& column, std::unordered_map<std::string, uint32_t>& vocabulary, std::string_view raw) {
  const FeatureDef& def = column.def;
  return encode_key(KeyRule{def.prefix_length, def.hash_buckets, def.boundaries, 0}, raw, [&](std::string_view key) -> uint32_t {
    // An empty first part is no value: kept out of the vocabulary, it is out-of-vocabulary here and in the SDK.
    if (key.empty() && !def.first.empty()) return 0;
    auto [it, inserted] = vocabulary.emplace(std::string(key), static_cast<uint32_t>(column.vocabulary.size() + 1));
    if (inserted) column.vocabulary.emplace_back(key);
    return it->second;
  });
}

// The last run of exactly four digits: "01-Jan-1995" and "2001: A Space Odyssey (1968)" give 1995 and 1968.
std::string year_of(const std::string& text) {
  const auto digit = [&text](size_t i) { return text[i] >= '0' && text[i] <= '9'; };
  for (size_t end = text.size(); end >= 4; --end) {
    const size_t start = end - 4;
    if (digit(start) && digit(start + 1) && digit(start + 2) && digit(start + 3) && (end == text.size() || !digit(end)) &&
        (start == 0 || !digit(start - 1)))
      return text.substr(start, 4);
  }
  return "";
}

std::vector<FeatureDef> parse_features(const json& object, const std::string& where) {
  std::vector<FeatureDef> defs;
  if (!object.contains("features") || !object.at("features").is_array())
    throw ConfigError(where + ": needs a 'features' array");
  for (const json& feature : object.at("features")) defs.push_back(parse_feature(feature, where));
  return defs;
}

// Reads an entity file, or, when the description has none, makes a table whose only feature is the key.
EntityTable read_entities(const json& description, const char* section, const std::string& name, const fs::path& root,
                          const std::string& where, const std::vector<std::string>& keys_from_interactions) {
  if (!description.contains(section)) return key_only_table(name, keys_from_interactions, where);
  const json& object = description.at(section);
  const std::string here = where + " '" + section + "'";
  const FileSpec file = parse_file_spec(object, root, here);
  EntityTableBuilder builder(name, parse_features(object, here));
  if (get_or<std::string>(object, "format", "delimited", here) == "json_lists") {
    // {"key": [values...], ...}: column 0 is the key, column 1 the values joined with '|'.
    std::ifstream in(file.path);
    if (!in) throw DataError(file.path + ": cannot open file");
    json lists;
    try {
      lists = json::parse(in);
    } catch (const json::exception& e) {  // a syntax error, or a number out of range (1e400)
      throw DataError(file.path + ": not valid JSON: " + e.what());
    }
    if (!lists.is_object()) throw DataError(file.path + ": expected a JSON object of key -> list");
    std::vector<std::string> fields(2);
    for (const auto& entry : lists.items()) {
      const std::string& key = entry.key();  // not a structured binding: clang 14 (the fuzzer) cannot capture one
      const json& values = entry.value();
      if (!values.is_array()) throw DataError(file.path + ": key '" + key + "': expected a list");
      fields[0] = key;
      fields[1].clear();
      for (const json& v : values) {
        if (!fields[1].empty()) fields[1].push_back('|');
        fields[1] += v.is_string() ? v.get<std::string>() : v.dump();
      }
      builder.add(key,
                  [&](size_t column, const std::string& what) -> const std::string& {
                    if (column > 1) throw DataError(file.path + ": key '" + key + "': json_lists rows have columns 0 and 1 only (" + what + ")");
                    return fields[column];
                  },
                  file.path + ": key '" + key + "'");
    }
    if (builder.size() == 0) throw DataError(file.path + ": no " + name + " rows");
    return builder.finish();
  }
  const size_t key_column = get_or<size_t>(object, "key", 0, here);
  DelimitedReader reader(file);
  while (reader.next()) {
    const std::string& key = reader.field(key_column, name + " key");
    builder.add(key, [&reader](size_t column, const std::string& what) -> const std::string& { return reader.field(column, what); },
                reader.where());
  }
  if (builder.size() == 0) throw DataError(file.path + ": no " + name + " rows");
  return builder.finish();
}

// A feature bucketized by its boundaries takes numbers: an empty value is a missing one (out of vocabulary,
// as in the SDK), anything else that is not a finite number is an error, never a silent out-of-vocabulary id.
void check_bucketized(const FeatureDef& def, std::string_view value, const std::string& where) {
  if (def.boundaries.empty() || def.hash_buckets > 0) return;
  const std::string_view key = key_prefix(value, def.prefix_length);
  double x = 0;
  if (key.empty() || (parse_number(key, &x) && std::isfinite(x))) return;
  throw DataError(where + ": field " + std::to_string(def.column + 1) + " (" + def.name + "): '" + std::string(value) +
                  "' is not a number (the feature is bucketized by its boundaries)");
}

}  // namespace

int64_t parse_integer(const std::string& text, const std::string& where) {
  // Whole and within int64_t: "inf" or "1e30" would make the cast undefined (found by the fuzzer).
  double x = 0;
  if (!parse_number(text, &x) || x != std::floor(x) || !(x >= -0x1p63 && x < 0x1p63))
    throw DataError(where + ": '" + text + "' is not an integer (a whole number within +-9.2e18)");
  return static_cast<int64_t>(x);
}

EntityTableBuilder::EntityTableBuilder(std::string name, std::vector<FeatureDef> defs) {
  table_.name = std::move(name);
  for (auto& def : defs) {
    FeatureColumn column;
    column.def = std::move(def);
    table_.features.push_back(std::move(column));
  }
  vocabularies_.resize(table_.features.size());
  dense_values_.resize(table_.features.size());
}

void EntityTableBuilder::add(const std::string& key, const FieldReader& read, const std::string& where) {
  if (!table_.index.emplace(key, static_cast<uint32_t>(table_.keys.size())).second)
    throw DataError(where + ": duplicate " + table_.name + " key '" + key + "'");
  table_.keys.push_back(key);
  Features raw;
  for (size_t f = 0; f < table_.features.size(); ++f) {
    FeatureColumn& column = table_.features[f];
    const FeatureDef& def = column.def;
    if (def.flags_first_column >= 0) {
      std::vector<std::string> values;
      for (size_t k = 0; k < def.flag_names.size(); ++k) {
        const std::string& flag = read(static_cast<size_t>(def.flags_first_column) + k, def.name);
        if (flag == "1") values.push_back(def.flag_names[k]);
        else if (flag != "0") throw DataError(where + ": flag column " + std::to_string(def.flags_first_column + k + 1) + " (" + def.name + "): expected 0 or 1, found '" + flag + "'");
      }
      for (const std::string& value : values) column.ids.push_back(encode_value(column, vocabularies_[f], value));
      raw.set(def.name, std::move(values));
    } else {
      std::string text = read(static_cast<size_t>(def.column), def.name);
      if (def.extract_year) text = year_of(text);
      if (!def.first.empty()) text = text.substr(0, text.find(def.first));
      if (def.kind == FeatureKind::kDense) {
        double x = 0;
        if (!parse_number(text, &x) || !std::isfinite(x))
          throw DataError(where + ": field " + std::to_string(def.column + 1) + " (" + def.name + "): '" + text + "' is not a number");
        dense_values_[f].push_back(x);
        raw.set(def.name, x);
      } else if (def.kind == FeatureKind::kMultiCategorical) {
        for (std::string_view part : split_values(text, def.separator)) {
          check_bucketized(def, part, where);
          column.ids.push_back(encode_value(column, vocabularies_[f], part));
        }
        raw.set(def.name, std::move(text));
      } else {
        check_bucketized(def, text, where);
        column.ids.push_back(encode_value(column, vocabularies_[f], text));
        raw.set(def.name, std::move(text));
      }
    }
    // An empty multi-valued feature pools the out-of-vocabulary row, as the SDK does.
    if (def.kind != FeatureKind::kDense && column.ids.size() == column.offsets.back()) column.ids.push_back(0);
    column.offsets.push_back(static_cast<uint32_t>(column.ids.size()));
  }
  table_.raw.push_back(std::move(raw));
}

EntityTable EntityTableBuilder::finish() {
  for (size_t f = 0; f < table_.features.size(); ++f) {
    FeatureColumn& column = table_.features[f];
    const FeatureDef& def = column.def;
    if (def.kind == FeatureKind::kDense) {
      const auto& values = dense_values_[f];
      double sum = 0, squares = 0;
      for (double x : values) sum += x;
      const double mean = values.empty() ? 0.0 : sum / static_cast<double>(values.size());
      for (double x : values) squares += (x - mean) * (x - mean);
      const double stddev = values.size() > 1 ? std::sqrt(squares / static_cast<double>(values.size())) : 1.0;
      column.mean = static_cast<float>(mean);
      column.stddev = stddev > 1e-12 ? static_cast<float>(stddev) : 1.0f;
      column.dense.reserve(values.size());
      for (double x : values) column.dense.push_back(static_cast<float>((x - column.mean) / column.stddev));
      column.cardinality = 0;
    } else if (def.hash_buckets > 0) {
      column.cardinality = def.hash_buckets + 1;
    } else if (!def.boundaries.empty()) {
      column.cardinality = static_cast<uint32_t>(def.boundaries.size() + 2);
    } else {
      column.cardinality = static_cast<uint32_t>(column.vocabulary.size() + 1);
    }
  }
  return std::move(table_);
}

std::vector<FeatureDef> parse_feature_defs(const json& section, const std::string& where) { return parse_features(section, where); }

EntityTable key_only_table(const std::string& name, const std::vector<std::string>& keys, const std::string& where) {
  FeatureDef def;
  def.name = name + "_id";
  def.column = 0;
  EntityTableBuilder builder(name, {def});
  for (const std::string& key : keys)
    builder.add(key, [&key](size_t, const std::string&) -> const std::string& { return key; }, where + " (" + name + " keys)");
  return builder.finish();
}

void check_distinct_feature_names(const Dataset& data, const std::string& where) {
  for (const auto& a : data.users.features)
    for (const auto& b : data.items.features)
      if (a.def.name == b.def.name) throw ConfigError(where + ": feature name '" + a.def.name + "' is used by users and items");
}

DatasetDescription read_dataset_description(const std::string& path, const std::string& root_override) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open dataset description");
  DatasetDescription description;
  description.path = path;
  try {
    description.json = json::parse(in);
  } catch (const json::exception& e) {  // a syntax error, or a number out of range (1e400)
    throw ConfigError(path + ": not valid JSON: " + e.what());
  }
  description.name = get_or<std::string>(description.json, "name", fs::path(path).stem().string(), path);
  description.root = root_override.empty()
                         ? (fs::path(path).parent_path() / get_or<std::string>(description.json, "root", ".", path)).string()
                         : root_override;
  return description;
}

void for_each_line(const std::string& path, const std::function<void(const std::string& text, size_t number)>& line) {
  LineSource in(path);
  std::string text;
  for (size_t number = 1; in.next(&text); ++number) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (!text.empty()) line(text, number);
  }
}

InteractionsFile for_each_interaction(const DatasetDescription& described, const InteractionRow& row) {
  const json& description = described.json;
  const std::string& where = described.path;
  if (!description.contains("interactions")) throw ConfigError(where + ": missing 'interactions'");
  const json& spec = description.at("interactions");
  const std::string here = where + " 'interactions'";
  const FileSpec file = parse_file_spec(spec, described.root, here);
  const size_t user_column = get_or<size_t>(spec, "user", 0, here);
  const size_t item_column = get_or<size_t>(spec, "item", 1, here);
  const int timestamp_column = get_or<int>(spec, "timestamp", -1, here);
  const std::string format = get_or<std::string>(spec, "format", "delimited", here);
  if (format != "delimited" && format != "sequences")
    throw ConfigError(here + ": unknown format '" + format + "' (delimited, sequences)");

  size_t rows = 0;
  DelimitedReader reader(file, /*same_field_count=*/format != "sequences");
  while (reader.next()) {
    const size_t line = reader.line_number();
    if (format == "sequences") {
      // "user item_1 item_2 ...", oldest first: the position is the time.
      const std::string& user = reader.field(0, "user");
      if (reader.field_count() < 2) throw DataError(reader.where() + ": a sequence needs a user and at least one item");
      for (size_t i = 1; i < reader.field_count(); ++i, ++rows) row(user, reader.field(i, "item"), static_cast<int64_t>(i), line);
      continue;
    }
    row(reader.field(user_column, "user"), reader.field(item_column, "item"),
        timestamp_column >= 0 ? parse_integer(reader.field(static_cast<size_t>(timestamp_column), "timestamp"),
                                              reader.where(static_cast<size_t>(timestamp_column), "timestamp"))
                              : static_cast<int64_t>(rows),
        line);
    ++rows;
  }
  if (rows == 0) throw DataError(file.path + ": no interactions");
  return {file.path, user_column};
}

EntityTable read_entity_table(const DatasetDescription& described, const char* section, const std::string& name,
                              const std::vector<std::string>& keys_from_interactions) {
  return read_entities(described.json, section, name, described.root, described.path, keys_from_interactions);
}

std::string missing_key_message(const InteractionsFile& file, size_t line, bool user, const std::string& key) {
  const std::string where_line = file.path + ":" + std::to_string(line);
  return user ? where_line + ": field " + std::to_string(file.user_column + 1) + " (user): key '" + key + "' is not in the users file"
              : where_line + ": item key '" + key + "' is not in the items file";
}

Dataset load_dataset(const std::string& description_path, const std::string& root_override) {
  const DatasetDescription described = read_dataset_description(description_path, root_override);
  Dataset data;
  data.name = described.name;

  struct RawInteraction {
    std::string user, item;
    int64_t timestamp;
    size_t line;
  };
  std::vector<RawInteraction> raw;
  std::vector<std::string> user_keys, item_keys;
  std::unordered_map<std::string, bool> seen_users, seen_items;
  const InteractionsFile file = for_each_interaction(described, [&](const std::string& user, const std::string& item, int64_t timestamp, size_t line) {
    if (seen_users.emplace(user, true).second) user_keys.push_back(user);
    if (seen_items.emplace(item, true).second) item_keys.push_back(item);
    raw.push_back({user, item, timestamp, line});
  });

  data.users = read_entity_table(described, "users", "user", user_keys);
  data.items = read_entity_table(described, "items", "item", item_keys);
  check_distinct_feature_names(data, description_path);

  data.interactions.reserve(raw.size());
  for (const RawInteraction& r : raw) {
    const auto user = data.users.index.find(r.user);
    if (user == data.users.index.end()) throw DataError(missing_key_message(file, r.line, true, r.user));
    const auto item = data.items.index.find(r.item);
    if (item == data.items.index.end()) throw DataError(missing_key_message(file, r.line, false, r.item));
    data.interactions.push_back({user->second, item->second, r.timestamp});
  }
  return data;
}

size_t feature_offset(const Dataset& data, const EntityTable& table) {
  return &table == &data.items ? data.users.features.size() : 0;
}

void encode_row(const Dataset& data, const EntityTable& table, size_t row, EncodedFeatures* out) {
  const size_t total = data.users.features.size() + data.items.features.size();
  const size_t first = feature_offset(data, table);
  out->reset(total);
  for (size_t f = 0; f < total; ++f) {
    out->offsets[f] = static_cast<uint32_t>(out->ids.size());
    if (f < first || f >= first + table.features.size()) continue;
    const FeatureColumn& column = table.features[f - first];
    if (column.def.kind == FeatureKind::kDense) {
      out->dense[f] = column.dense[row];
    } else {
      const auto ids = column.ids_of(row);
      out->ids.insert(out->ids.end(), ids.begin(), ids.end());
    }
  }
  out->offsets[total] = static_cast<uint32_t>(out->ids.size());
}

}  // namespace funnel::train
