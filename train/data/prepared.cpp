#include "train/data/prepared.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "train/core/errors.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "prepared files are little-endian and read as they lie in memory"
#endif

namespace funnel::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* prepared_kind_name(PreparedKind kind) {
  switch (kind) {
    case PreparedKind::kTrainRows: return "training rows";
    case PreparedKind::kHoldouts: return "holdouts";
    case PreparedKind::kItemCounts: return "item training counts";
    case PreparedKind::kTrainItemOffsets: return "training-item offsets";
    case PreparedKind::kTrainItems: return "training items";
    case PreparedKind::kCtrRows: return "CTR training instances";
    case PreparedKind::kCtrEvaluation: return "CTR evaluation instances";
  }
  return "unknown";
}

std::string xxh3_hex(uint64_t hash) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

PreparedFile::PreparedFile(const std::string& path, PreparedKind kind, uint32_t element_bytes)
    : path_(path), element_bytes_(element_bytes) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw DataError(path + ": cannot open (" + std::strerror(errno) + ")");
  PreparedHeader header{};
  const ssize_t got = ::pread(fd_, &header, sizeof header, 0);
  const std::string what = std::string(" (") + prepared_kind_name(kind) + ")";
  if (got != static_cast<ssize_t>(sizeof header)) {
    ::close(fd_);
    throw DataError(path + ": truncated at offset " + std::to_string(got < 0 ? 0 : got) + ": the 32-byte header is incomplete" + what);
  }
  std::string problem;
  if (std::memcmp(header.magic, kPreparedMagic, 8) != 0) problem = "offset 0: not a prepared file (magic)";
  else if (header.kind != static_cast<uint32_t>(kind))
    problem = "offset 8: field 'kind' is " + std::to_string(header.kind) + ", expected " + std::to_string(static_cast<uint32_t>(kind));
  else if (header.element_bytes != element_bytes)
    problem = "offset 12: field 'element_bytes' is " + std::to_string(header.element_bytes) + ", expected " + std::to_string(element_bytes);
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  const uint64_t expected = sizeof header + header.count * static_cast<uint64_t>(element_bytes);
  if (problem.empty() && static_cast<uint64_t>(size) != expected)
    problem = (static_cast<uint64_t>(size) < expected ? "truncated at offset " : "trailing bytes from offset ") +
              std::to_string(std::min<uint64_t>(static_cast<uint64_t>(size), expected)) + ": the header's count " +
              std::to_string(header.count) + " needs " + std::to_string(expected) + " bytes, the file has " + std::to_string(size);
  if (!problem.empty()) {
    ::close(fd_);
    throw DataError(path + ": " + problem + what);
  }
  count_ = header.count;
}

PreparedFile::~PreparedFile() {
  if (fd_ >= 0) ::close(fd_);
}

void PreparedFile::read(uint64_t first, uint64_t n, void* out) const {
  const uint64_t bytes = n * element_bytes_;
  const uint64_t offset = sizeof(PreparedHeader) + first * element_bytes_;
  uint64_t done = 0;
  while (done < bytes) {
    const ssize_t got = ::pread(fd_, static_cast<char*>(out) + done, bytes - done, static_cast<off_t>(offset + done));
    if (got <= 0)
      throw DataError(path_ + ": cannot read " + std::to_string(bytes - done) + " bytes at offset " + std::to_string(offset + done) +
                      (got < 0 ? std::string(" (") + std::strerror(errno) + ")" : std::string(" (the file was cut short)")));
    done += static_cast<uint64_t>(got);
  }
}

uint64_t PreparedFile::checksum() const {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  const uint64_t block = std::max<uint64_t>(1, (1u << 20) / element_bytes_);
  std::vector<char> buffer(block * element_bytes_);
  for (uint64_t first = 0; first < count_; first += block) {
    const uint64_t n = std::min(block, count_ - first);
    read(first, n, buffer.data());
    XXH3_64bits_update(&state, buffer.data(), n * element_bytes_);
  }
  return XXH3_64bits_digest(&state);
}

TrainItemLists::TrainItemLists(std::vector<uint64_t> offsets, std::unique_ptr<PreparedFile> items)
    : offsets_(std::move(offsets)), items_(std::move(items)) {}

void TrainItemLists::read(size_t first, size_t last, std::vector<uint32_t>* starts, std::vector<uint32_t>* items) const {
  starts->clear();
  for (size_t u = first; u <= last; ++u) starts->push_back(static_cast<uint32_t>(offsets_[u] - offsets_[first]));
  items->resize(offsets_[last] - offsets_[first]);
  items_->read(offsets_[first], items->size(), items->data());
}

namespace {

// A small file of the folder, read whole, its count and checksum checked against the manifest.
template <typename T>
std::vector<T> read_small(const std::string& directory, const json& files, const char* name, PreparedKind kind, uint64_t count,
                          const std::string& manifest_path) {
  const std::string where = manifest_path + " 'files." + name + "'";
  const json entry = files.contains(name) ? files.at(name) : json();
  const std::string path = (fs::path(directory) / manifest_field<std::string>(entry, "path", where)).string();
  PreparedFile file(path, kind, sizeof(T));
  if (file.count() != count)
    throw DataError(path + ": offset 16: field 'count' is " + std::to_string(file.count()) + ", the manifest expects " + std::to_string(count));
  std::vector<T> values(count);
  file.read(0, count, values.data());
  const std::string hash = xxh3_hex(XXH3_64bits(values.data(), values.size() * sizeof(T)));
  if (hash != manifest_field<std::string>(entry, "xxh3", where))
    throw DataError(path + ": checksum " + hash + " differs from the manifest's " + manifest_field<std::string>(entry, "xxh3", where) +
                    ": the file is corrupt");
  return values;
}

}  // namespace

bool is_prepared_dataset(const std::string& path) {
  std::error_code error;
  return fs::is_directory(path, error) && fs::is_regular_file(fs::path(path) / "manifest.json", error);
}

PreparedDataset open_prepared(const std::string& directory, uint32_t rank, uint32_t world) {
  PreparedDataset out;
  out.directory = directory;
  const std::string manifest_path = (fs::path(directory) / "manifest.json").string();
  {
    std::ifstream in(manifest_path);
    if (!in) throw DataError(manifest_path + ": cannot open");
    try {
      out.manifest = json::parse(in);
    } catch (const json::exception& e) {
      throw DataError(manifest_path + ": not valid JSON: " + e.what());
    }
  }
  const json& m = out.manifest;
  if (manifest_field<std::string>(m, "format", manifest_path) != kPreparedFormat)
    throw DataError(manifest_path + ": field 'format' is not '" + std::string(kPreparedFormat) + "'");
  if (const auto version = manifest_field<uint32_t>(m, "version", manifest_path); version != kPreparedVersion)
    throw DataError(manifest_path + ": field 'version' is " + std::to_string(version) + "; this funnel reads version " +
                    std::to_string(kPreparedVersion) + " (prepare the dataset again)");
  const auto users = manifest_field<uint64_t>(m, "users", manifest_path);
  const auto items = manifest_field<uint64_t>(m, "items", manifest_path);
  out.interactions = manifest_field<uint64_t>(m, "interactions", manifest_path);
  out.train_rows = manifest_field<uint64_t>(m, "train_rows", manifest_path);
  if (manifest_field<uint32_t>(manifest_field<json>(m, "row", manifest_path), "bytes", manifest_path + " 'row'") != sizeof(Interaction))
    throw DataError(manifest_path + ": field 'row.bytes' is not " + std::to_string(sizeof(Interaction)));

  // The tables: the entity files copied beside the manifest, encoded as load_dataset encodes them.
  const DatasetDescription tables = read_dataset_description((fs::path(directory) / manifest_field<std::string>(m, "tables", manifest_path)).string(), "");
  out.data.name = manifest_field<std::string>(m, "name", manifest_path);
  out.data.users = read_entity_table(tables, "users", "user", {});
  out.data.items = read_entity_table(tables, "items", "item", {});
  check_distinct_feature_names(out.data, tables.path);
  if (out.data.users.size() != users || out.data.items.size() != items)
    throw DataError(tables.path + ": the tables have " + std::to_string(out.data.users.size()) + " users and " +
                    std::to_string(out.data.items.size()) + " items, the manifest " + std::to_string(users) + " and " + std::to_string(items));

  const json files = manifest_field<json>(m, "files", manifest_path);
  const auto holdouts = read_small<int64_t>(directory, files, "holdouts", PreparedKind::kHoldouts, 2 * users, manifest_path);
  for (size_t u = 0; u < users; ++u) {
    out.split.validation_item.push_back(holdouts[2 * u]);
    out.split.test_item.push_back(holdouts[2 * u + 1]);
    for (int64_t item : {holdouts[2 * u], holdouts[2 * u + 1]})
      if (item < -1 || item >= static_cast<int64_t>(items))
        throw DataError(directory + "/holdouts.bin: user " + std::to_string(u) + ": item " + std::to_string(item) + " is out of range");
  }
  out.split.item_train_count = read_small<uint32_t>(directory, files, "item_counts", PreparedKind::kItemCounts, items, manifest_path);
  out.split.tail_item = tail_items(out.split.item_train_count);
  std::vector<uint64_t> offsets =
      read_small<uint64_t>(directory, files, "train_item_offsets", PreparedKind::kTrainItemOffsets, users + 1, manifest_path);
  const std::string where = manifest_path + " 'files.train_items'";
  const json entry = files.contains("train_items") ? files.at("train_items") : json();
  auto item_file = std::make_unique<PreparedFile>((fs::path(directory) / manifest_field<std::string>(entry, "path", where)).string(),
                                                  PreparedKind::kTrainItems, sizeof(uint32_t));
  if (offsets.front() != 0 || offsets.back() != item_file->count())
    throw DataError(item_file->path() + ": " + std::to_string(item_file->count()) + " items, the offsets end at " + std::to_string(offsets.back()));
  for (size_t u = 0; u < users; ++u)
    if (offsets[u] > offsets[u + 1]) throw DataError(directory + "/train_item_offsets.bin: user " + std::to_string(u) + ": offsets decrease");
  if (xxh3_hex(item_file->checksum()) != manifest_field<std::string>(entry, "xxh3", where))
    throw DataError(item_file->path() + ": checksum differs from the manifest's: the file is corrupt");
  out.split.train_item_lists = std::make_shared<TrainItemLists>(std::move(offsets), std::move(item_file));

  uint64_t rows = 0;
  for (const json& shard : manifest_field<json>(m, "shards", manifest_path)) {
    const std::string here = manifest_path + " 'shards'";
    PreparedShard s{(fs::path(directory) / manifest_field<std::string>(shard, "path", here)).string(), manifest_field<uint64_t>(shard, "rows", here), 0};
    s.checksum = std::stoull(manifest_field<std::string>(shard, "xxh3", here), nullptr, 16);
    // Another rank's shard is listed, not opened: it need not be on this rank's machine.
    if (out.shards.size() % std::max<uint32_t>(world, 1) == rank) {
      const PreparedFile file(s.path, PreparedKind::kTrainRows, sizeof(Interaction));
      if (file.count() != s.rows)
        throw DataError(s.path + ": offset 16: field 'count' is " + std::to_string(file.count()) + ", the manifest expects " + std::to_string(s.rows));
    }
    rows += s.rows;
    out.shards.push_back(std::move(s));
  }
  if (rows != out.train_rows)
    throw DataError(manifest_path + ": the shards hold " + std::to_string(rows) + " rows, field 'train_rows' says " + std::to_string(out.train_rows));
  return out;
}

}  // namespace funnel::train
