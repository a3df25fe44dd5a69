#include "train/data/ctr_stream.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>

#include "train/core/errors.hpp"

namespace funnel::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// A CTR row's problem, or empty: every field the training reads, in range.
std::string row_problem(const uint8_t* row, uint32_t max_history, uint64_t users, uint64_t items) {
  CtrRowHead head;
  std::memcpy(&head, row, sizeof head);
  if (head.user >= users) return "field 'user' is " + std::to_string(head.user) + ", out of range (" + std::to_string(users) + ")";
  if (head.target >= items) return "field 'target' is " + std::to_string(head.target) + ", out of range (" + std::to_string(items) + ")";
  if (head.label != 0.0f && head.label != 1.0f) return "field 'label' is " + std::to_string(head.label) + ", not 0 or 1";
  if (head.history_length > max_history)
    return "field 'history_length' is " + std::to_string(head.history_length) + ", above max_history " + std::to_string(max_history);
  for (uint32_t h = 0; h < head.history_length; ++h) {
    uint32_t item;
    std::memcpy(&item, row + sizeof head + 4 * h, 4);
    if (item >= items) return "field 'history[" + std::to_string(h) + "]' is " + std::to_string(item) + ", out of range (" + std::to_string(items) + ")";
  }
  return {};
}

[[noreturn]] void corrupt_row(const std::string& path, uint64_t row, uint32_t row_bytes, const std::string& problem) {
  throw DataError(path + ": row " + std::to_string(row) + " at offset " + std::to_string(sizeof(PreparedHeader) + row * row_bytes) + ": " +
                  problem + ": the file is corrupt");
}

std::span<const uint32_t> row_history(const uint8_t* row, uint32_t max_history, std::vector<uint32_t>* scratch) {
  CtrRowHead head;
  std::memcpy(&head, row, sizeof head);
  const uint32_t kept = std::min(head.history_length, max_history);
  scratch->resize(kept);
  std::memcpy(scratch->data(), row + sizeof head + 4 * (head.history_length - kept), 4 * size_t{kept});
  return *scratch;
}

}  // namespace

std::shared_ptr<PreparedCtr> open_prepared_ctr(const PreparedDataset& prepared, const CtrOptions& requested, CtrInstances* evaluation,
                                               uint32_t rank, uint32_t world) {
  const std::string manifest_path = (fs::path(prepared.directory) / "manifest.json").string();
  if (!prepared.manifest.contains("ctr"))
    throw ConfigError(prepared.directory + ": prepared without CTR instances; run `funnel prepare --ctr` (with the ranker's max_history, "
                      "negatives and data_seed) for train-ranker, autofas and train-funnel");
  const json& section = prepared.manifest.at("ctr");
  const std::string where = manifest_path + " 'ctr'";
  auto out = std::make_shared<PreparedCtr>();
  out->directory = prepared.directory;
  out->options = {manifest_field<uint32_t>(section, "max_history", where), manifest_field<uint32_t>(section, "negatives", where),
                  manifest_field<uint64_t>(section, "data_seed", where)};
  out->users = prepared.data.users.size();
  out->items = prepared.data.items.size();
  if (out->options.max_history == 0) throw DataError(where + ": field 'max_history' is 0");
  out->row_bytes = ctr_row_bytes(out->options.max_history);
  if (manifest_field<uint32_t>(manifest_field<json>(section, "row", where), "bytes", where + ".row") != out->row_bytes)
    throw DataError(where + ": field 'row.bytes' is not " + std::to_string(out->row_bytes) + " (16 + 4 max_history)");
  if (requested.negatives != out->options.negatives || requested.data_seed != out->options.data_seed) {
    const bool negatives = requested.negatives != out->options.negatives;
    throw ConfigError(prepared.directory + ": the config's '" + (negatives ? "negatives" : "data_seed") + "' is " +
                      std::to_string(negatives ? requested.negatives : requested.data_seed) + ", the folder was prepared with " +
                      std::to_string(negatives ? out->options.negatives : out->options.data_seed) +
                      " (the instances are drawn at prepare time: prepare again with --ctr-" + (negatives ? "negatives" : "data-seed") + ")");
  }
  if (requested.max_history > out->options.max_history)
    throw ConfigError(prepared.directory + ": the config's 'max_history' is " + std::to_string(requested.max_history) +
                      ", above the " + std::to_string(out->options.max_history) +
                      " the folder was prepared with (a smaller one is used as is; prepare again with --ctr-max-history for a longer one)");
  out->train_rows = manifest_field<uint64_t>(section, "train_rows", where);
  uint64_t rows = 0;
  for (const json& shard : manifest_field<json>(section, "shards", where)) {
    const std::string here = where + ".shards";
    PreparedShard s{(fs::path(prepared.directory) / manifest_field<std::string>(shard, "path", here)).string(), manifest_field<uint64_t>(shard, "rows", here), 0};
    s.checksum = std::stoull(manifest_field<std::string>(shard, "xxh3", here), nullptr, 16);
    if (out->shards.size() % std::max<uint32_t>(world, 1) == rank) {
      const PreparedFile file(s.path, PreparedKind::kCtrRows, out->row_bytes);
      if (file.count() != s.rows)
        throw DataError(s.path + ": offset 16: field 'count' is " + std::to_string(file.count()) + ", the manifest expects " + std::to_string(s.rows));
    }
    rows += s.rows;
    out->shards.push_back(std::move(s));
  }
  if (rows != out->train_rows)
    throw DataError(where + ": the shards hold " + std::to_string(rows) + " rows, field 'train_rows' says " + std::to_string(out->train_rows));
  if (rows > std::numeric_limits<uint32_t>::max()) throw DataError(where + ": more than 2^32 - 1 training instances");

  // Validation and test, whole; a row with the user and history of the one before shares its history.
  std::vector<uint32_t> scratch;
  for (const auto& [name, split] : {std::pair{"validation", &CtrInstances::validation}, std::pair{"test", &CtrInstances::test}}) {
    const json entry = manifest_field<json>(section, name, where);
    const std::string path = (fs::path(prepared.directory) / manifest_field<std::string>(entry, "path", where + "." + name)).string();
    const PreparedFile file(path, PreparedKind::kCtrEvaluation, out->row_bytes);
    if (file.count() != manifest_field<uint64_t>(entry, "count", where + "." + name))
      throw DataError(path + ": offset 16: field 'count' is " + std::to_string(file.count()) + ", the manifest says otherwise");
    if (xxh3_hex(file.checksum()) != manifest_field<std::string>(entry, "xxh3", where + "." + name))
      throw DataError(path + ": checksum differs from the manifest's: the file is corrupt");
    std::vector<uint8_t> row(out->row_bytes), previous(out->row_bytes);
    CtrSplit& target = evaluation->*split;
    for (uint64_t i = 0; i < file.count(); ++i) {
      file.read(i, 1, row.data());
      if (const std::string problem = row_problem(row.data(), out->options.max_history, out->users, out->items); !problem.empty())
        corrupt_row(path, i, out->row_bytes, problem);
      CtrRowHead head;
      std::memcpy(&head, row.data(), sizeof head);
      const bool shared = i > 0 && std::memcmp(previous.data(), row.data(), 4) == 0 &&
                          std::memcmp(previous.data() + 12, row.data() + 12, out->row_bytes - 12) == 0;
      if (!shared) {
        const std::span<const uint32_t> history = row_history(row.data(), requested.max_history, &scratch);
        evaluation->history_items.insert(evaluation->history_items.end(), history.begin(), history.end());
        evaluation->history_offsets.push_back(static_cast<uint32_t>(evaluation->history_items.size()));
      }
      target.history.push_back(static_cast<uint32_t>(evaluation->history_count() - 1));
      target.user.push_back(head.user);
      target.target.push_back(head.target);
      target.label.push_back(head.label);
      std::swap(row, previous);
    }
  }
  return out;
}

void CtrBatch::clear() {
  instances.history_offsets.assign(1, 0);
  instances.history_items.clear();
  CtrSplit& train = instances.train;
  train.history.clear();
  train.user.clear();
  train.target.clear();
  train.label.clear();
  ids.clear();
}

void CtrBatch::add(uint32_t id, uint32_t user, uint32_t target, float label, std::span<const uint32_t> history) {
  instances.history_items.insert(instances.history_items.end(), history.begin(), history.end());
  instances.history_offsets.push_back(static_cast<uint32_t>(instances.history_items.size()));
  CtrSplit& train = instances.train;
  train.history.push_back(static_cast<uint32_t>(instances.history_count() - 1));
  train.user.push_back(user);
  train.target.push_back(target);
  train.label.push_back(label);
  ids.push_back(id);
}

void InMemoryCtrBatches::start_epoch(Rng& rng) {
  order_.resize(instances_.train.size());
  std::iota(order_.begin(), order_.end(), 0u);
  rng.shuffle(order_);
  at_ = 0;
}

void InMemoryCtrBatches::add(uint32_t i, CtrBatch* out) const {
  const CtrSplit& train = instances_.train;
  const uint32_t h = train.history[i];
  const uint32_t* items = instances_.history_items.data();
  out->add(i, train.user[i], train.target[i], train.label[i],
           std::span<const uint32_t>(items + instances_.history_offsets[h], items + instances_.history_offsets[h + 1]));
}

size_t InMemoryCtrBatches::next(size_t count, CtrBatch* out) {
  out->clear();
  const size_t n = std::min(count, order_.size() - at_);
  for (size_t k = 0; k < n; ++k) add(order_[at_ + k], out);
  at_ += n;
  return n;
}

void InMemoryCtrBatches::for_each_in_order(size_t count, const std::function<void(const CtrBatch&)>& visit) {
  CtrBatch batch;
  const size_t n = instances_.train.size();
  for (size_t begin = 0; begin < n; begin += count) {
    batch.clear();
    for (size_t i = begin; i < std::min(n, begin + count); ++i) add(static_cast<uint32_t>(i), &batch);
    visit(batch);
  }
}

namespace {
ShuffledRows::Check ctr_check(const PreparedCtr& prepared) {
  return [&prepared](const uint8_t* rows, uint64_t n, const PreparedShard& shard, uint64_t first) {
    for (uint64_t i = 0; i < n; ++i)
      if (const std::string problem = row_problem(rows + i * prepared.row_bytes, prepared.options.max_history, prepared.users, prepared.items);
          !problem.empty())
        corrupt_row(shard.path, first + i, prepared.row_bytes, problem);
  };
}
}  // namespace

ShuffledCtrShards::ShuffledCtrShards(const PreparedCtr& prepared, uint32_t max_history, uint32_t rank, uint32_t world, size_t chunk_rows)
    : prepared_(prepared),
      max_history_(max_history),
      chunk_rows_(chunk_rows),
      rows_(prepared.shards, PreparedKind::kCtrRows, prepared.row_bytes, prepared.shuffle_buffer, rank, world, chunk_rows, ctr_check(prepared)) {
  if (max_history == 0 || max_history > prepared.options.max_history)
    throw ConfigError("streaming: max_history " + std::to_string(max_history) + " is not within 1.." + std::to_string(prepared.options.max_history) +
                      ", the prepared one");
}

void ShuffledCtrShards::add(const uint8_t* row, uint64_t id, CtrBatch* out) const {
  thread_local std::vector<uint32_t> scratch;
  CtrRowHead head;
  std::memcpy(&head, row, sizeof head);
  out->add(static_cast<uint32_t>(id), head.user, head.target, head.label, row_history(row, max_history_, &scratch));
}

size_t ShuffledCtrShards::next(size_t count, CtrBatch* out) {
  out->clear();
  uint64_t id = 0;
  for (size_t k = 0; k < count; ++k) {
    const uint8_t* row = rows_.next(&id);
    if (!row) break;
    add(row, id, out);
  }
  return out->size();
}

void ShuffledCtrShards::for_each_in_order(size_t count, const std::function<void(const CtrBatch&)>& visit) {
  ShuffledRows all(prepared_.shards, PreparedKind::kCtrRows, prepared_.row_bytes, 1, 0, 1, chunk_rows_, ctr_check(prepared_));
  all.start_in_order();
  CtrBatch batch;
  uint64_t id = 0;
  for (bool more = true; more;) {
    batch.clear();
    while (batch.size() < count) {
      const uint8_t* row = all.next(&id);
      if (!row) {
        more = false;
        break;
      }
      add(row, id, &batch);
    }
    if (batch.size() > 0) visit(batch);
  }
}

std::unique_ptr<CtrBatches> ctr_batches(const CtrDataset& ctr, uint32_t max_history, uint32_t rank, uint32_t world) {
  if (ctr.streamed) {
    if (ctr.streamed->shards.size() < world)
      throw ConfigError(ctr.streamed->directory + ": " + std::to_string(ctr.streamed->shards.size()) + " CTR shard" +
                        (ctr.streamed->shards.size() == 1 ? "" : "s") + " for " + std::to_string(world) +
                        " ranks: each rank reads its own shards; prepare it again with --ctr-shard-rows " +
                        std::to_string(std::max<uint64_t>((ctr.streamed->train_rows + world - 1) / world, 1)) + " or fewer");
    return std::make_unique<ShuffledCtrShards>(*ctr.streamed, max_history, rank, world);
  }
  return std::make_unique<InMemoryCtrBatches>(ctr.instances);
}

uint64_t train_instance_count(const CtrDataset& ctr) { return ctr.streamed ? ctr.streamed->train_rows : ctr.instances.train.size(); }

}  // namespace funnel::train
