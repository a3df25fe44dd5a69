#include "train/data/ctr_data.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <limits>
#include <numeric>
#include <span>
#include <string_view>
#include <unordered_map>

#include "train/core/errors.hpp"
#include "train/core/rng.hpp"
#include "train/data/ctr_stream.hpp"
#include "train/data/prepared.hpp"

namespace funnel::train {

namespace fs = std::filesystem;

namespace {

void check_options(const CtrOptions& options) {
  if (options.max_history == 0) throw ConfigError("CTR options: max_history must be at least 1");
  if (options.negatives == 0) throw ConfigError("CTR options: negatives must be at least 1");
}

// Stores a history (item rows, oldest first) and returns its index.
uint32_t add_history(CtrInstances& out, std::span<const uint32_t> items) {
  if (out.history_items.size() + items.size() > std::numeric_limits<uint32_t>::max())
    throw DataError("CTR instances: more than 2^32 history items in all; lower max_history");
  out.history_items.insert(out.history_items.end(), items.begin(), items.end());
  out.history_offsets.push_back(static_cast<uint32_t>(out.history_items.size()));
  return static_cast<uint32_t>(out.history_count() - 1);
}

void add_instance(CtrSplit& split, uint32_t history, uint32_t user, uint32_t target, float label) {
  split.history.push_back(history);
  split.user.push_back(user);
  split.target.push_back(target);
  split.label.push_back(label);
}

// The fields of a text line between `separator`s; an empty text has none.
std::vector<std::string_view> split_fields(std::string_view text, char separator) {
  std::vector<std::string_view> fields;
  if (text.empty()) return fields;
  for (size_t start = 0;;) {
    const size_t end = text.find(separator, start);
    fields.push_back(text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return fields;
    start = end + 1;
  }
}

FeatureDef categorical(std::string name, int column) {
  FeatureDef def;
  def.name = std::move(name);
  def.column = column;
  return def;
}

// Rows of the DIEN/CAN files become users, items and instances; their order of first appearance gives the rows.
class DienReader {
 public:
  explicit DienReader(const CtrOptions& options)
      : options_(options),
        users_("user", {categorical("user_id", 0)}),
        items_("item", {categorical("item_id", 0), categorical("category", 1)}) {}

  void read(const std::string& path, CtrSplit CtrInstances::*split) {
    // A positive and its negatives are consecutive rows with one user and one history: they share it.
    std::string previous_user, previous_history;
    uint32_t history = 0;
    size_t rows = 0;
    for_each_line(path, [&](const std::string& line, size_t number) {
      const std::string where = path + ":" + std::to_string(number);
      const auto at = [&where](size_t field, const char* name) {
        return where + ": field " + std::to_string(field + 1) + " (" + name + ")";
      };
      const std::vector<std::string_view> fields = split_fields(line, '\t');
      if (fields.size() != 6)
        throw DataError(where + ": expected 6 tab-separated fields (label, uid, mid, cat, mid_history, cat_history), found " +
                        std::to_string(fields.size()));
      if (fields[0] != "0" && fields[0] != "1")
        throw DataError(at(0, "label") + ": expected 0 or 1, found '" + std::string(fields[0]) + "'");
      const char* names[] = {"label", "uid", "mid", "cat"};
      for (size_t f = 1; f < 4; ++f)
        if (fields[f].empty()) throw DataError(at(f, names[f]) + ": empty");
      const std::vector<std::string_view> mids = split_fields(fields[4], '\x02');
      const std::vector<std::string_view> cats = split_fields(fields[5], '\x02');
      if (cats.size() != mids.size())
        throw DataError(at(5, "cat_history") + ": " + std::to_string(cats.size()) + " categories for " +
                        std::to_string(mids.size()) + " items in mid_history");

      const uint32_t user = row_of(users_, user_rows_, fields[1], {}, where);
      const uint32_t target = row_of(items_, item_rows_, fields[2], fields[3], where);
      history_.clear();
      for (size_t i = 0; i < mids.size(); ++i) {
        if (mids[i].empty()) throw DataError(at(4, "mid_history") + ": item " + std::to_string(i + 1) + " is empty");
        if (cats[i].empty()) throw DataError(at(5, "cat_history") + ": category " + std::to_string(i + 1) + " is empty");
        history_.push_back(row_of(items_, item_rows_, mids[i], cats[i], where));
      }
      if (rows == 0 || fields[1] != previous_user || fields[4] != previous_history) {
        const size_t kept = std::min<size_t>(history_.size(), options_.max_history);
        history = add_history(instances_, std::span<const uint32_t>(history_).last(kept));
        previous_user = fields[1];
        previous_history = fields[4];
      }
      add_instance(instances_.*split, history, user, target, fields[0] == "1" ? 1.0f : 0.0f);
      ++rows;
    });
    if (rows == 0) throw DataError(path + ": no rows");
  }

  CtrDataset finish(std::string name) {
    CtrDataset out;
    out.data.name = std::move(name);
    out.data.users = users_.finish();
    out.data.items = items_.finish();
    out.instances = std::move(instances_);
    return out;
  }

 private:
  // The row of `key`, added on first sight. An item keeps the category it is first seen with: DIEN's item-info
  // gives one category per item (its process_data.py keeps an item's first line), so a later different
  // category is ignored rather than refused.
  uint32_t row_of(EntityTableBuilder& table, std::unordered_map<std::string, uint32_t>& rows, std::string_view key,
                  std::string_view category, const std::string& where) {
    const auto [it, inserted] = rows.try_emplace(std::string(key), static_cast<uint32_t>(rows.size()));
    if (inserted) {
      fields_[0] = key;
      fields_[1] = category;
      table.add(it->first, [this](size_t column, const std::string&) -> const std::string& { return fields_[column]; }, where);
    }
    return it->second;
  }

  CtrOptions options_;
  EntityTableBuilder users_, items_;
  std::unordered_map<std::string, uint32_t> user_rows_, item_rows_;
  CtrInstances instances_;
  std::vector<uint32_t> history_;
  std::array<std::string, 2> fields_;  // the raw key and category of the row being added
};

CtrDataset load_dien(const DatasetDescription& description, const CtrOptions& options) {
  const auto file = [&description](const char* key) {
    const auto field = description.json.find(key);
    if (field == description.json.end() || !field->is_string())
      throw ConfigError(description.path + ": a \"dien\" dataset needs '" + key + "', a file name");
    return (fs::path(description.root) / field->get<std::string>()).lexically_normal().string();
  };
  const std::string train = file("train"), test = file("test");
  DienReader reader(options);
  reader.read(train, &CtrInstances::train);
  // DIEN's own files have no validation split; one may be given, in the same format.
  if (description.json.contains("validation")) reader.read(file("validation"), &CtrInstances::validation);
  reader.read(test, &CtrInstances::test);
  return reader.finish(description.name);
}

}  // namespace

CtrInstances build_ctr_instances(const Dataset& data, const CtrOptions& options) {
  check_options(options);
  const std::vector<Interaction>& interactions = data.interactions;
  // load_dataset keeps the file order (a sequence's position is its time), so a stable sort keeps it for ties.
  std::vector<size_t> order(interactions.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&interactions](size_t a, size_t b) {
    const Interaction& x = interactions[a];
    const Interaction& y = interactions[b];
    return x.user < y.user || (x.user == y.user && x.timestamp < y.timestamp);
  });

  struct Positive {
    uint32_t history, user, target;
  };
  CtrInstances out;
  std::array<std::vector<Positive>, 3> positives;  // train, validation, test
  std::vector<std::vector<uint32_t>> seen(data.users.size());  // per user, the items ever interacted with, sorted
  std::vector<uint32_t> sequence;
  for (size_t begin = 0, end = 0; begin < order.size(); begin = end) {
    const uint32_t user = interactions[order[begin]].user;
    sequence.clear();
    for (end = begin; end < order.size() && interactions[order[end]].user == user; ++end)
      sequence.push_back(interactions[order[end]].item);
    const size_t n = sequence.size();
    if (n < 3) continue;
    std::vector<uint32_t>& items = seen[user];
    items = sequence;
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
    if (items.size() >= data.items.size())
      throw DataError(data.name + ": user '" + data.users.keys[user] + "' interacted with every item, so no negative can be sampled");
    // t is 0-based here: the target s_{t+1} with the history s_1..s_t of the protocol.
    const auto add = [&](std::vector<Positive>& split, size_t t) {
      const size_t kept = std::min<size_t>(t, options.max_history);
      split.push_back({add_history(out, std::span<const uint32_t>(sequence).subspan(t - kept, kept)), user, sequence[t]});
    };
    for (size_t t = 1; t + 2 < n; ++t) add(positives[0], t);
    add(positives[1], n - 2);
    add(positives[2], n - 1);
  }

  // Rng(s + 1) draws Rng(s)'s stream one step later, so after a rejected first draw two neighbouring seeds
  // would give the same negatives; seeding with the first draw makes neighbouring seeds unrelated.
  Rng rng(Rng(options.data_seed).next());
  CtrSplit* splits[] = {&out.train, &out.validation, &out.test};
  for (size_t s = 0; s < 3; ++s) {
    CtrSplit& split = *splits[s];
    const size_t size = positives[s].size() * (size_t{options.negatives} + 1);
    split.history.reserve(size);
    split.user.reserve(size);
    split.target.reserve(size);
    split.label.reserve(size);
    for (const Positive& p : positives[s]) {
      add_instance(split, p.history, p.user, p.target, 1.0f);
      const std::vector<uint32_t>& items = seen[p.user];
      for (uint32_t k = 0; k < options.negatives; ++k) {
        uint32_t item = 0;
        do item = static_cast<uint32_t>(rng.below(data.items.size()));
        while (std::binary_search(items.begin(), items.end(), item));
        add_instance(split, p.history, p.user, item, 0.0f);
      }
    }
  }
  return out;
}

CtrDataset load_ctr_dataset(const std::string& description_path, const std::string& root_override, const CtrOptions& options,
                            uint64_t shuffle_buffer, uint32_t rank, uint32_t world) {
  check_options(options);
  if (is_prepared_dataset(description_path)) {
    if (shuffle_buffer == 0) throw ConfigError("shuffle_buffer must be at least 1 row");
    PreparedDataset prepared = open_prepared(description_path, rank, world);
    CtrDataset out;
    auto streamed = open_prepared_ctr(prepared, options, &out.instances, rank, world);
    streamed->shuffle_buffer = shuffle_buffer;
    out.data = std::move(prepared.data);
    out.streamed = std::move(streamed);
    return out;
  }
  const DatasetDescription description = read_dataset_description(description_path, root_override);
  if (const auto format = description.json.find("format"); format != description.json.end()) {
    if (!format->is_string() || format->get<std::string>() != "dien")
      throw ConfigError(description_path + ": unknown dataset format " + format->dump() +
                        " (\"dien\", or none for the delimited files of docs/dataset-format.md)");
    return load_dien(description, options);
  }
  CtrDataset out;
  out.data = load_dataset(description_path, root_override);
  out.instances = build_ctr_instances(out.data, options);
  return out;
}

}  // namespace funnel::train
