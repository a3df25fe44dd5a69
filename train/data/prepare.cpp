#include "train/data/prepare.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "train/core/atomic_file.hpp"
#include "train/core/errors.hpp"
#include "train/data/ctr_prepare.hpp"
#include "train/data/dataset.hpp"
#include "train/data/prepared.hpp"
#include "train/data/prepared_writer.hpp"

namespace funnel::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Keys in order of first appearance, with the line each first appeared on (for a located error).
struct KeyIndex {
  std::unordered_map<std::string, uint32_t> index;
  std::vector<std::string> keys;
  std::vector<size_t> first_line;
  std::vector<uint64_t> counts;

  uint32_t add(const std::string& key, size_t line, const std::string& where) {
    const auto [it, added] = index.emplace(key, static_cast<uint32_t>(keys.size()));
    if (added) {
      if (keys.size() == std::numeric_limits<uint32_t>::max()) throw DataError(where + ": more than 2^32 - 1 distinct keys");
      keys.push_back(key);
      first_line.push_back(line);
      counts.push_back(0);
    }
    ++counts[it->second];
    return it->second;
  }
};

// Table rows of the keys by appearance id; `missing` gets the first line with a key the table lacks.
std::vector<uint32_t> table_rows(const KeyIndex& keys, const EntityTable& table, size_t* missing_line, std::string* missing_key) {
  std::vector<uint32_t> rows(keys.keys.size());
  for (size_t a = 0; a < rows.size(); ++a) {
    const auto found = table.index.find(keys.keys[a]);
    if (found != table.index.end()) {
      rows[a] = found->second;
    } else if (keys.first_line[a] < *missing_line) {
      *missing_line = keys.first_line[a];
      *missing_key = keys.keys[a];
    }
  }
  return rows;
}

// The entity section as the folder keeps it: the source file copied beside the manifest, or for a key-only
// table a one-column file of its keys (quoted), read back as the same one feature "<name>_id".
json copy_entity_section(const DatasetDescription& described, const char* section, const std::string& name, const std::vector<std::string>& keys,
                         const fs::path& directory) {
  if (described.json.contains(section)) {
    json copy = described.json.at(section);
    if (!copy.contains("path") || !copy.at("path").is_string())
      throw ConfigError(described.path + " '" + section + "': missing field 'path'");
    const fs::path source = fs::path(described.root) / copy.at("path").get<std::string>();
    const std::string target = std::string(section) + "_" + source.filename().string();
    std::error_code error;
    fs::copy_file(source, directory / target, fs::copy_options::overwrite_existing, error);
    if (error) throw TrainingError("cannot copy " + source.string() + " to " + (directory / target).string() + ": " + error.message());
    copy["path"] = target;
    return copy;
  }
  std::string text;
  for (const std::string& key : keys) {
    text.push_back('"');
    for (char c : key) {
      if (c == '"') text.push_back('"');
      text.push_back(c);
    }
    text.append("\"\n");
  }
  const std::string target = std::string(section) + "_keys.csv";
  write_file_atomically((directory / target).string(), text);
  return {{"path", target}, {"header", false}, {"key", 0}, {"features", json::array({{{"name", name + "_id"}, {"column", 0}}})}};
}

// The rows of users [first, last) from the encoded temporary file, in file order, then grouped by user and
// ordered by timestamp within each (a stable sort keeps file order on ties: build_ctr_instances' order).
std::vector<Interaction> user_block(const PreparedFile& encoded, const std::vector<uint32_t>& user_row, const std::vector<uint32_t>& item_row,
                                    uint32_t first, uint32_t last, uint64_t rows) {
  std::vector<Interaction> block;
  block.reserve(rows);
  std::vector<Interaction> chunk(1 << 16);
  for (uint64_t at = 0; at < encoded.count(); at += chunk.size()) {
    const uint64_t n = std::min<uint64_t>(chunk.size(), encoded.count() - at);
    encoded.read(at, n, chunk.data());
    for (uint64_t i = 0; i < n; ++i) {
      const uint32_t user = user_row[chunk[i].user];
      if (user >= first && user < last) block.push_back({user, item_row[chunk[i].item], chunk[i].timestamp});
    }
  }
  std::stable_sort(block.begin(), block.end(), [](const Interaction& a, const Interaction& b) {
    return a.user < b.user || (a.user == b.user && a.timestamp < b.timestamp);
  });
  return block;
}

}  // namespace

PrepareSummary prepare_dataset(const std::string& description_path, const std::string& directory_name, const PrepareOptions& options) {
  if (options.shard_rows == 0 || options.sort_rows == 0) throw ConfigError("prepare: shard_rows and sort_rows must be at least 1");
  const DatasetDescription described = read_dataset_description(description_path, options.root_override);
  const fs::path directory = directory_name;
  std::error_code error;
  fs::create_directories(directory, error);
  if (error) throw TrainingError("cannot create " + directory.string() + ": " + error.message());
  fs::remove(directory / "manifest.json", error);
  for (const auto& entry : fs::directory_iterator(directory))
    if ((entry.path().filename().string().rfind("train-", 0) == 0 || entry.path().filename().string().rfind("ctr", 0) == 0) &&
        entry.path().extension() == ".bin")
      fs::remove(entry.path(), error);

  // Pass 1: the text, streamed, into encoded rows (appearance ids) in a temporary file.
  KeyIndex users, items;
  const fs::path encoded_path = directory / "interactions.encoding";
  InteractionsFile source;
  {
    BinaryWriter encoded(encoded_path, PreparedKind::kTrainRows, sizeof(Interaction));
    std::vector<Interaction> buffer;
    buffer.reserve(1 << 16);
    source = for_each_interaction(described, [&](const std::string& user, const std::string& item, int64_t timestamp, size_t line) {
      buffer.push_back({users.add(user, line, described.path), items.add(item, line, described.path), timestamp});
      if (buffer.size() == buffer.capacity()) {
        encoded.write(buffer.data(), buffer.size());
        buffer.clear();
      }
    });
    encoded.write(buffer.data(), buffer.size());
    encoded.finish();
  }
  struct RemoveOnExit {
    fs::path path;
    ~RemoveOnExit() {
      std::error_code ignored;
      fs::remove(path, ignored);
    }
  } remove_encoded{encoded_path};

  Dataset tables;
  tables.name = described.name;
  tables.users = read_entity_table(described, "users", "user", users.keys);
  tables.items = read_entity_table(described, "items", "item", items.keys);
  check_distinct_feature_names(tables, description_path);
  size_t user_missing = std::numeric_limits<size_t>::max(), item_missing = user_missing;
  std::string user_key, item_key;
  const std::vector<uint32_t> user_row = table_rows(users, tables.users, &user_missing, &user_key);
  const std::vector<uint32_t> item_row = table_rows(items, tables.items, &item_missing, &item_key);
  if (user_missing <= item_missing && !user_key.empty()) throw DataError(missing_key_message(source, user_missing, true, user_key));
  if (item_missing != std::numeric_limits<size_t>::max()) throw DataError(missing_key_message(source, item_missing, false, item_key));
  const json tables_json = {{"name", described.name},
                            {"users", copy_entity_section(described, "users", "user", users.keys, directory)},
                            {"items", copy_entity_section(described, "items", "item", items.keys, directory)}};
  write_file_atomically((directory / "tables.json").string(), tables_json.dump(2) + "\n");

  const size_t user_count = tables.users.size(), item_count = tables.items.size();
  std::vector<uint64_t> per_user(user_count, 0);
  for (size_t a = 0; a < users.keys.size(); ++a) per_user[user_row[a]] += users.counts[a];
  users = {};
  items = {};

  // Pass 2..: blocks of users in table order, each from one read of the encoded file: leave-last-out per user.
  const PreparedFile encoded(encoded_path.string(), PreparedKind::kTrainRows, sizeof(Interaction));
  PrepareSummary summary;
  summary.users = user_count;
  summary.items = item_count;
  summary.interactions = encoded.count();
  std::vector<int64_t> holdouts(2 * user_count, -1);
  std::vector<uint32_t> item_counts(item_count, 0);
  std::vector<uint64_t> offsets{0};
  BinaryWriter train_items(directory / "train_items.bin", PreparedKind::kTrainItems, sizeof(uint32_t));
  json shards = json::array();
  std::unique_ptr<BinaryWriter> shard;
  std::unique_ptr<CtrInstanceWriter> ctr = options.ctr ? std::make_unique<CtrInstanceWriter>(directory, tables, options.ctr_options, options.ctr_shard_rows) : nullptr;
  std::vector<uint32_t> list;
  for (uint32_t first = 0; first < user_count;) {
    uint32_t last = first;
    uint64_t rows = 0;
    while (last < user_count && (last == first || rows + per_user[last] <= options.sort_rows)) rows += per_user[last++];
    std::vector<Interaction> block = user_block(encoded, user_row, item_row, first, last, rows);
    ++summary.grouping_passes;
    size_t at = 0;
    for (uint32_t u = first; u < last; ++u) {
      const size_t size = per_user[u];
      Interaction* history = block.data() + at;
      at += size;
      if (ctr) {
        list.clear();
        for (size_t i = 0; i < size; ++i) list.push_back(history[i].item);
        ctr->add_user(u, list);
      }
      // leave_last_out's order: (timestamp, item), ties in file order.
      std::stable_sort(history, history + size, [](const Interaction& a, const Interaction& b) {
        return a.timestamp < b.timestamp || (a.timestamp == b.timestamp && a.item < b.item);
      });
      size_t train_end = size;
      if (size >= 3) {
        holdouts[2 * u + 1] = history[size - 1].item;
        holdouts[2 * u] = history[size - 2].item;
        train_end -= 2;
      }
      for (size_t i = 0; i < train_end;) {
        if (!shard || shard->count() == options.shard_rows) {
          if (shard) shards.push_back(shard->finish("rows"));
          char name[32];
          std::snprintf(name, sizeof name, "train-%05zu.bin", shards.size());
          shard = std::make_unique<BinaryWriter>(directory / name, PreparedKind::kTrainRows, sizeof(Interaction));
        }
        const size_t n = std::min<uint64_t>(train_end - i, options.shard_rows - shard->count());
        shard->write(history + i, n);
        i += n;
      }
      list.clear();
      for (size_t i = 0; i < train_end; ++i) {
        ++item_counts[history[i].item];
        list.push_back(history[i].item);
      }
      summary.train_rows += train_end;
      std::sort(list.begin(), list.end());
      list.erase(std::unique(list.begin(), list.end()), list.end());
      train_items.write(list.data(), list.size());
      offsets.push_back(train_items.count());
    }
    first = last;
  }
  if (shard) shards.push_back(shard->finish("rows"));
  summary.shards = shards.size();

  const auto small_file = [&](const char* name, PreparedKind kind, const void* data, uint64_t count, uint32_t bytes) {
    BinaryWriter writer(directory / (std::string(name) + ".bin"), kind, bytes);
    writer.write(data, count);
    return writer.finish();
  };
  json manifest = {
      {"format", kPreparedFormat},
      {"version", kPreparedVersion},
      {"name", described.name},
      {"source", fs::absolute(description_path).lexically_normal().string()},
      {"split", "leave_last_out"},
      {"users", user_count},
      {"items", item_count},
      {"interactions", summary.interactions},
      {"train_rows", summary.train_rows},
      {"row",
       {{"bytes", sizeof(Interaction)},
        {"fields",
         json::array({{{"name", "user"}, {"type", "uint32"}, {"offset", 0}},
                      {{"name", "item"}, {"type", "uint32"}, {"offset", 4}},
                      {{"name", "timestamp"}, {"type", "int64"}, {"offset", 8}}})}}},
      {"tables", "tables.json"},
      {"files",
       {{"holdouts", small_file("holdouts", PreparedKind::kHoldouts, holdouts.data(), holdouts.size(), sizeof(int64_t))},
        {"item_counts", small_file("item_counts", PreparedKind::kItemCounts, item_counts.data(), item_counts.size(), sizeof(uint32_t))},
        {"train_item_offsets",
         small_file("train_item_offsets", PreparedKind::kTrainItemOffsets, offsets.data(), offsets.size(), sizeof(uint64_t))},
        {"train_items", train_items.finish()}}},
      {"shards", shards}};
  if (ctr) {
    manifest["ctr"] = ctr->finish();
    summary.ctr_train_rows = ctr->train_rows();
    summary.ctr_shards = ctr->shards();
  }
  write_file_atomically((directory / "manifest.json").string(), manifest.dump(2) + "\n");
  return summary;
}

}  // namespace funnel::train
