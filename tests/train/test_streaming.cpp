// Streaming training from a prepared folder (train/data/prepare.hpp, prepared.hpp, interaction_stream.hpp):
//  - prepare, read back: the tables, the split and the training rows are the in-memory dataset's and split's;
//  - one shard and a shuffle buffer at least as large as it trains bit for bit as in memory (the same
//    permutation from the same generator), and a resumed streaming run equals the uninterrupted one;
//  - the shuffle buffer is deterministic, visits every row exactly once per epoch, and ranks split the shards;
//  - a truncated or corrupt shard, a wrong header and an unknown version are refused with the file and offset.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

#include "support.hpp"
#include "train/core/errors.hpp"
#include "train/data/interaction_stream.hpp"
#include "train/data/prepare.hpp"
#include "train/data/prepared.hpp"
#include "train/data/split.hpp"
#include "train/data/synthetic.hpp"
#include "train/retrieval/two_tower_training.hpp"

using namespace funnel::train;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  funnel::test::TempDir dir;
  std::string description;
  Dataset data;
  Split split;
  Fixture() {
    description = write_synthetic_dataset(dir.file("csv"), funnel::test::small_synthetic_options());
    data = load_dataset(description);
    split = leave_last_out(data);
  }
  std::string prepare(const std::string& name, uint64_t shard_rows, uint64_t sort_rows = uint64_t{1} << 24) const {
    PrepareOptions options;
    options.shard_rows = shard_rows;
    options.sort_rows = sort_rows;
    prepare_dataset(description, dir.file(name), options);
    return dir.file(name);
  }
};

TrainConfig quick_config() {
  TrainConfig config = funnel::test::small_two_tower_config();
  config.drift_interval = 11;
  config.drift_deltas = {1, 5, 10};
  return config;
}

std::vector<Interaction> epoch(InteractionBatches& rows, Rng& rng, size_t batch = 37) {
  std::vector<Interaction> out;
  rows.start_epoch(rng);
  while (rows.next(batch, &out) > 0) {
  }
  return out;
}

using Key = std::tuple<uint32_t, uint32_t, int64_t>;
std::map<Key, int> multiset(const std::vector<Interaction>& rows) {
  std::map<Key, int> out;
  for (const Interaction& x : rows) ++out[{x.user, x.item, x.timestamp}];
  return out;
}

bool same_rows(const std::vector<Interaction>& a, const std::vector<Interaction>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].user != b[i].user || a[i].item != b[i].item || a[i].timestamp != b[i].timestamp) return false;
  return true;
}

void compare_tables(const EntityTable& a, const EntityTable& b) {
  REQUIRE(a.keys == b.keys);
  REQUIRE(a.features.size() == b.features.size());
  for (size_t f = 0; f < a.features.size(); ++f) {
    INFO(a.features[f].def.name);
    CHECK(a.features[f].vocabulary == b.features[f].vocabulary);
    CHECK(a.features[f].offsets == b.features[f].offsets);
    CHECK(a.features[f].ids == b.features[f].ids);
    CHECK(a.features[f].dense == b.features[f].dense);
    CHECK(a.features[f].cardinality == b.features[f].cardinality);
  }
}

void patch(const std::string& path, uint64_t offset, const void* bytes, size_t n) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
}

}  // namespace

TEST_CASE("Prepare: reading back gives the in-memory dataset, its split and its training rows", "[streaming]") {
  const Fixture f;
  // Several shards, and grouping by user in several passes (sort_rows far below the interactions).
  const PreparedDataset p = open_prepared(f.prepare("prepared", 500, 300));
  CHECK(p.interactions == f.data.interactions.size());
  CHECK(p.train_rows == f.split.train.size());
  CHECK(p.shards.size() == (f.split.train.size() + 499) / 500);
  compare_tables(p.data.users, f.data.users);
  compare_tables(p.data.items, f.data.items);
  CHECK(p.split.validation_item == f.split.validation_item);
  CHECK(p.split.test_item == f.split.test_item);
  CHECK(p.split.item_train_count == f.split.item_train_count);
  CHECK(p.split.tail_item == f.split.tail_item);

  std::vector<Interaction> rows;
  for (const PreparedShard& shard : p.shards) {
    const PreparedFile file(shard.path, PreparedKind::kTrainRows, sizeof(Interaction));
    const size_t at = rows.size();
    rows.resize(at + file.count());
    file.read(0, file.count(), rows.data() + at);
  }
  CHECK(same_rows(rows, f.split.train));

  std::vector<uint32_t> starts, items;
  p.split.train_item_lists->read(0, f.data.users.size(), &starts, &items);
  for (size_t u = 0; u < f.data.users.size(); ++u)
    CHECK(std::vector<uint32_t>(items.begin() + starts[u], items.begin() + starts[u + 1]) == f.split.train_items[u]);
}

TEST_CASE("Prepare: a dataset without entity files keeps its key-only tables", "[streaming]") {
  funnel::test::TempDir dir;
  std::string text = "user,item,time\n";
  for (int u = 0; u < 12; ++u)
    for (int n = 0; n < 5; ++n) text += "u\"" + std::to_string(u) + ",i" + std::to_string((u * 7 + n * 3) % 11) + "," + std::to_string(100 - n) + "\n";
  dir.write("interactions.csv", text);
  const std::string description = dir.write(
      "dataset.json", R"({"interactions": {"path": "interactions.csv", "header": true, "quote": "", "user": 0, "item": 1, "timestamp": 2}})");
  const Dataset data = load_dataset(description);
  prepare_dataset(description, dir.file("prepared"));
  const PreparedDataset p = open_prepared(dir.file("prepared"));
  compare_tables(p.data.users, data.users);
  compare_tables(p.data.items, data.items);
  CHECK(p.split.test_item == leave_last_out(data).test_item);
}

TEST_CASE("Streaming: one shard and a buffer as large trains bit for bit as in memory; resuming equals the uninterrupted run",
          "[streaming][training][checkpoint]") {
  const Fixture f;
  const PreparedDataset one = open_prepared(f.prepare("one", uint64_t{1} << 22));
  REQUIRE(one.shards.size() == 1);
  for (const char* negatives : {"in_batch", "cbns"}) {
    INFO(negatives);
    TrainConfig config = quick_config();
    config.negatives = negatives;
    config.memory_size = 100;
    config.cbns_warmup_steps = 4;
    const std::vector<uint8_t> in_memory = train_two_tower(f.data, f.split, config).model_file;
    ShuffledShards streamed(one, config.shuffle_buffer);
    CHECK(train_two_tower(one.data, one.split, streamed, config).model_file == in_memory);
  }

  // Several shards and a small buffer: another order, so another model, but a resumed run is the same run.
  const PreparedDataset many = open_prepared(f.prepare("many", 400));
  TrainConfig config = quick_config();
  config.shuffle_buffer = 150;
  ShuffledShards first(many, config.shuffle_buffer);
  const std::vector<uint8_t> uninterrupted = train_two_tower(many.data, many.split, first, config).model_file;
  funnel::test::TempDir dir;
  TrainOptions crashing;
  crashing.checkpoint = dir.file("run.ckpt");
  crashing.observer.on_epoch = [](const EpochRecord& r) {
    if (r.epoch == 2) throw std::runtime_error("simulated crash");
  };
  ShuffledShards second(many, config.shuffle_buffer);
  CHECK_THROWS_WITH(train_two_tower(many.data, many.split, second, config, crashing), "simulated crash");
  TrainOptions resuming;
  resuming.resume = crashing.checkpoint;
  ShuffledShards third(many, config.shuffle_buffer);
  const TrainResult resumed = train_two_tower(many.data, many.split, third, config, resuming);
  CHECK(resumed.model_file == uninterrupted);
}

TEST_CASE("Streaming: the shuffle buffer is seeded, visits every row once per epoch, and ranks split the shards", "[streaming]") {
  const Fixture f;
  const PreparedDataset p = open_prepared(f.prepare("prepared", 300));
  REQUIRE(p.shards.size() >= 5);
  const std::map<Key, int> all = multiset(f.split.train);

  ShuffledShards a(p, 64, 0, 1, 50), b(p, 64, 0, 1, 50);
  Rng rng_a(5), rng_b(5);
  const std::vector<Interaction> first = epoch(a, rng_a);
  CHECK(same_rows(first, epoch(b, rng_b)));
  CHECK(multiset(first) == all);
  const std::vector<Interaction> second = epoch(a, rng_a);
  CHECK(multiset(second) == all);
  CHECK_FALSE(same_rows(first, second));
  CHECK_FALSE(same_rows(first, f.split.train));

  // A buffer as large as the data over one shard: InMemoryInteractions' permutation, row for row.
  const PreparedDataset one = open_prepared(f.prepare("one", uint64_t{1} << 22));
  ShuffledShards whole(one, f.split.train.size(), 0, 1, 50);
  InMemoryInteractions in_memory(f.split.train);
  Rng rng_c(9), rng_d(9);
  CHECK(same_rows(epoch(whole, rng_c), epoch(in_memory, rng_d)));
  CHECK(same_rows(epoch(whole, rng_c), epoch(in_memory, rng_d)));

  // Rank r of 3 reads shards i % 3 == r: together every row once, apart no row twice.
  std::vector<Interaction> together;
  uint64_t rows = 0;
  for (uint32_t rank = 0; rank < 3; ++rank) {
    ShuffledShards part(p, 64, rank, 3, 50);
    Rng rng(11);
    const std::vector<Interaction> mine = epoch(part, rng);
    CHECK(mine.size() == part.rows());
    rows += part.rows();
    together.insert(together.end(), mine.begin(), mine.end());
  }
  CHECK(rows == f.split.train.size());
  CHECK(multiset(together) == all);
  CHECK_THROWS_AS(ShuffledShards(p, 64, 3, 3), ConfigError);
}

TEST_CASE("Prepared: a truncated or corrupt shard is refused with the file and offset", "[streaming]") {
  const Fixture f;
  const std::string directory = f.prepare("prepared", 500);
  const std::string shard = directory + "/train-00001.bin";
  const auto copy_of = [&](const std::string& name) {
    const std::string target = f.dir.file(name);
    fs::copy(directory, target);
    return target;
  };

  const std::string cut = copy_of("cut");
  fs::resize_file(cut + "/train-00001.bin", fs::file_size(shard) - 5);
  CHECK_THROWS_WITH(open_prepared(cut), Contains("train-00001.bin") && Contains("truncated at offset " + std::to_string(fs::file_size(shard) - 5)));

  const std::string magic = copy_of("magic");
  patch(magic + "/train-00001.bin", 0, "NOTAFILE", 8);
  CHECK_THROWS_WITH(open_prepared(magic), Contains("train-00001.bin") && Contains("offset 0") && Contains("magic"));

  // A flipped timestamp byte: the rows are in range, the checksum at the shard's end is not.
  const std::string flipped = copy_of("flipped");
  const uint8_t byte = 0x5A;
  patch(flipped + "/train-00001.bin", 32 + 16 * 7 + 9, &byte, 1);
  const PreparedDataset p = open_prepared(flipped);
  ShuffledShards rows(p, 1000);
  Rng rng(1);
  CHECK_THROWS_WITH(epoch(rows, rng), Contains("train-00001.bin") && Contains("checksum") && Contains("corrupt"));

  // A user out of range is caught at its row, before it reaches an embedding table.
  const std::string range = copy_of("range");
  const uint32_t huge = 1u << 30;
  patch(range + "/train-00001.bin", 32 + 16 * 3, &huge, 4);
  const PreparedDataset q = open_prepared(range);
  ShuffledShards bad(q, 1000);
  CHECK_THROWS_WITH(epoch(bad, rng), Contains("train-00001.bin") && Contains("row 3 at offset 80") && Contains("field 'user'"));

  const std::string version = copy_of("version");
  std::ifstream in(version + "/manifest.json");
  nlohmann::json manifest = nlohmann::json::parse(in);
  manifest["version"] = 99;
  std::ofstream(version + "/manifest.json") << manifest.dump();
  CHECK_THROWS_WITH(open_prepared(version), Contains("manifest.json") && Contains("'version' is 99"));

  const std::string holdouts = copy_of("holdouts");
  patch(holdouts + "/holdouts.bin", 40, &byte, 1);
  CHECK_THROWS_WITH(open_prepared(holdouts), Contains("holdouts.bin") && Contains("checksum"));
}
