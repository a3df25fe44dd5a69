// The prepared form of a dataset (`funnel prepare`, docs/dataset-format.md "Prepared datasets"): a folder
// with a JSON manifest, the entity tables' source files, the leave-last-out holdouts, the training counts,
// each user's training items, and the training interactions in fixed-width binary rows split into shards.
// Training streams the shards (shuffle_stream.hpp); everything else here is bounded by users and items.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "train/core/errors.hpp"
#include "train/data/dataset.hpp"
#include "train/data/split.hpp"

namespace funnel::train {

// Every binary file of the folder: this 32-byte header, then `count` elements of `element_bytes` each,
// little-endian. The manifest gives each file's XXH3-64 over the elements (not the header).
enum class PreparedKind : uint32_t {
  kTrainRows = 1,
  kHoldouts = 2,
  kItemCounts = 3,
  kTrainItemOffsets = 4,
  kTrainItems = 5,
  kCtrRows = 6,        // the ranking stage's training instances (ctr_stream.hpp), in shards
  kCtrEvaluation = 7,  // its validation or test instances, one small file each
};
struct PreparedHeader {
  char magic[8];  // "FNLPREP1"
  uint32_t kind;
  uint32_t element_bytes;
  uint64_t count;
  uint64_t reserved;
};
static_assert(sizeof(PreparedHeader) == 32);
static_assert(sizeof(Interaction) == 16, "a training row is an Interaction as it lies in memory: user, item, timestamp");
// A CTR instance row (`funnel prepare --ctr`): this head, then max_history uint32 item rows, the history oldest
// first and zero-padded after history_length of them. max_history is fixed at prepare time (the manifest's
// "ctr" section), so a row is 16 + 4 * max_history bytes.
struct CtrRowHead {
  uint32_t user;    // row of the users table
  uint32_t target;  // row of the items table
  float label;      // 1 positive, 0 negative
  uint32_t history_length;
};
static_assert(sizeof(CtrRowHead) == 16);
constexpr uint32_t ctr_row_bytes(uint32_t max_history) { return static_cast<uint32_t>(sizeof(CtrRowHead)) + 4 * max_history; }
constexpr uint32_t kPreparedVersion = 1;
constexpr const char* kPreparedMagic = "FNLPREP1";
constexpr const char* kPreparedFormat = "funnel-prepared";

const char* prepared_kind_name(PreparedKind kind);
std::string xxh3_hex(uint64_t hash);

// An open binary file of the folder, its header checked against the kind, element size and file size:
// a file cut short or too long is an error naming the file and the offset where it stops making sense.
class PreparedFile {
 public:
  PreparedFile(const std::string& path, PreparedKind kind, uint32_t element_bytes);
  ~PreparedFile();
  PreparedFile(const PreparedFile&) = delete;
  PreparedFile& operator=(const PreparedFile&) = delete;

  uint64_t count() const { return count_; }
  const std::string& path() const { return path_; }
  // Reads elements [first, first + n) into `out` (n * element_bytes bytes); throws DataError on a short read.
  void read(uint64_t first, uint64_t n, void* out) const;
  // XXH3-64 of all elements, read in bounded blocks.
  uint64_t checksum() const;

 private:
  std::string path_;
  int fd_ = -1;
  uint32_t element_bytes_;
  uint64_t count_ = 0;
};

// Each user's training items (sorted, unique) for the evaluation's exclusion, read a block of users at a
// time from train_items.bin, so evaluation needs no per-interaction memory.
class TrainItemLists {
 public:
  TrainItemLists(std::vector<uint64_t> offsets, std::unique_ptr<PreparedFile> items);
  size_t users() const { return offsets_.size() - 1; }
  // Items of users [first, last): (*items)[(*starts)[u - first] .. (*starts)[u - first + 1]).
  void read(size_t first, size_t last, std::vector<uint32_t>* starts, std::vector<uint32_t>* items) const;

 private:
  std::vector<uint64_t> offsets_;
  std::unique_ptr<PreparedFile> items_;
};

struct PreparedShard {
  std::string path;
  uint64_t rows = 0;
  uint64_t checksum = 0;
};

struct PreparedDataset {
  std::string directory;
  nlohmann::json manifest;
  // The users' and items' tables, encoded as load_dataset encodes them; no interactions.
  Dataset data;
  // The holdouts, training counts and tail items as leave_last_out gives them; no training interactions
  // (they stream from `shards`) and no per-user lists in memory (split.train_item_lists reads them).
  Split split;
  std::vector<PreparedShard> shards;
  uint64_t interactions = 0;  // in the source, before the split
  uint64_t train_rows = 0;
};

// A manifest's field, or a DataError naming `where` and the field when it is missing or of the wrong type.
template <typename T>
T manifest_field(const nlohmann::json& object, const char* key, const std::string& where) {
  if (!object.is_object() || !object.contains(key)) throw DataError(where + ": missing field '" + key + "'");
  try {
    return object.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw DataError(where + ": field '" + key + "' has the wrong type");
  }
}

// True when `path` is a folder holding a manifest.json: the dataset argument of the training verbs.
bool is_prepared_dataset(const std::string& path);
// Opens a prepared folder: checks the manifest (format, version, counts), every small file's header and
// checksum, and every shard's header and size (their checksums are checked as they are read). Throws
// DataError naming the file and field of the first problem. Rank `rank` of a run of `world` ranks opens
// only its own shards (i % world == rank, those ShuffledShards(rank, world) reads): the others are listed
// from the manifest and need not exist on its machine.
PreparedDataset open_prepared(const std::string& directory, uint32_t rank = 0, uint32_t world = 1);

}  // namespace funnel::train
