// Streaming the ranking stage's CTR instances from a prepared folder (`funnel prepare --ctr`;
// train/data/ctr_prepare.hpp, ctr_stream.hpp):
//  - the prepared rows are build_ctr_instances' instances (training, validation, test; several shards and
//    several grouping passes);
//  - one shard and a shuffle buffer at least as large trains the ranker bit for bit as in memory, and AutoFAS
//    (teacher, search, distilled student) gives the in-memory run's file; a resumed streamed run equals the
//    uninterrupted one (several shards, a small buffer);
//  - a corrupt or truncated CTR shard is refused with the file and offset; a config whose max_history,
//    negatives or data_seed disagrees with the folder's, and a folder prepared without --ctr, are refused.
#include <catch2/catch.hpp>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "support.hpp"
#include "train/core/errors.hpp"
#include "train/data/ctr_stream.hpp"
#include "train/data/prepare.hpp"
#include "train/data/synthetic.hpp"
#include "train/pre_ranking/autofas_training.hpp"
#include "train/ranking/ranker_training.hpp"

using namespace funnel::train;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

constexpr CtrOptions kCtr{6, 2, 11};  // max_history, negatives, data_seed

struct Fixture {
  funnel::test::TempDir dir;
  std::string description;
  CtrDataset memory;
  Fixture() {
    SyntheticOptions options;
    options.users = 150;
    options.items = 90;
    options.categories = 5;
    options.mean_interactions = 10;
    options.seed = 5;
    description = write_synthetic_dataset(dir.file("csv"), options);
    memory = load_ctr_dataset(description, "", kCtr);
  }
  std::string prepare(const std::string& name, uint64_t ctr_shard_rows, uint64_t sort_rows = uint64_t{1} << 24, bool ctr = true) const {
    PrepareOptions options;
    options.sort_rows = sort_rows;
    options.ctr = ctr;
    options.ctr_options = kCtr;
    options.ctr_shard_rows = ctr_shard_rows;
    prepare_dataset(description, dir.file(name), options);
    return dir.file(name);
  }
};

RankerConfig ranker_config() {
  RankerConfig config;
  config.model = "can";
  config.max_history = kCtr.max_history;
  config.negatives = kCtr.negatives;
  config.data_seed = kCtr.data_seed;
  config.embedding_dim = 4;
  config.hidden = {8};
  config.coaction_feed_dim = 4;
  config.coaction_layers = {3, 2};
  config.epochs = 2;
  config.batch_size = 64;
  config.threads = 1;
  return config;
}

std::vector<uint32_t> history_of(const CtrInstances& instances, const CtrSplit& split, size_t i) {
  const uint32_t h = split.history[i];
  return {instances.history_items.begin() + instances.history_offsets[h], instances.history_items.begin() + instances.history_offsets[h + 1]};
}

void check_same_split(const CtrInstances& a, const CtrSplit& x, const CtrInstances& b, const CtrSplit& y) {
  REQUIRE(x.size() == y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("instance " << i);
    CHECK(x.user[i] == y.user[i]);
    CHECK(x.target[i] == y.target[i]);
    CHECK(x.label[i] == y.label[i]);
    CHECK(history_of(a, x, i) == history_of(b, y, i));
    // A positive and its negatives share one history in both (the SDK's evaluation groups them so).
    if (i > 0) CHECK((x.history[i] == x.history[i - 1]) == (y.history[i] == y.history[i - 1]));
  }
}

void flip_bits(const std::string& path, uint64_t offset, uint8_t mask) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  char value = 0;
  file.seekg(static_cast<std::streamoff>(offset));
  file.read(&value, 1);
  value = static_cast<char>(value ^ static_cast<char>(mask));
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(&value, 1);
}

void read_epoch(CtrBatches& batches) {
  Rng rng(1);
  CtrBatch batch;
  batches.start_epoch(rng);
  while (batches.next(50, &batch) > 0) {
  }
}

}  // namespace

TEST_CASE("Prepare --ctr: the rows are build_ctr_instances' training, validation and test instances", "[streaming][ctr]") {
  const Fixture f;
  // 97-row shards and 300-row grouping blocks: several of each.
  const CtrDataset streamed = load_ctr_dataset(f.prepare("prepared", 97, 300), "", kCtr);
  REQUIRE(streamed.streamed);
  CHECK(streamed.streamed->shards.size() > 3);
  CHECK(streamed.data.users.keys == f.memory.data.users.keys);
  CHECK(streamed.data.items.keys == f.memory.data.items.keys);
  const CtrInstances& in = f.memory.instances;
  REQUIRE(train_instance_count(streamed) == in.train.size());
  size_t next_id = 0;
  ctr_batches(streamed, kCtr.max_history)->for_each_in_order(40, [&](const CtrBatch& batch) {
    for (size_t k = 0; k < batch.size(); ++k, ++next_id) {
      INFO("training instance " << next_id);
      REQUIRE(batch.ids[k] == next_id);
      CHECK(batch.instances.train.user[k] == in.train.user[next_id]);
      CHECK(batch.instances.train.target[k] == in.train.target[next_id]);
      CHECK(batch.instances.train.label[k] == in.train.label[next_id]);
      CHECK(history_of(batch.instances, batch.instances.train, k) == history_of(in, in.train, next_id));
    }
  });
  CHECK(next_id == in.train.size());
  check_same_split(streamed.instances, streamed.instances.validation, in, in.validation);
  check_same_split(streamed.instances, streamed.instances.test, in, in.test);

  // A ranker asking for fewer behaviours reads the last ones of each prepared history, as build_ctr_instances keeps them.
  const CtrOptions shorter{3, kCtr.negatives, kCtr.data_seed};
  const CtrDataset short_memory = load_ctr_dataset(f.description, "", shorter);
  const CtrDataset short_streamed = load_ctr_dataset(f.dir.file("prepared"), "", shorter);
  check_same_split(short_streamed.instances, short_streamed.instances.test, short_memory.instances, short_memory.instances.test);
  ctr_batches(short_streamed, shorter.max_history)->for_each_in_order(1000, [&](const CtrBatch& batch) {
    for (size_t k = 0; k < batch.size(); ++k)
      CHECK(history_of(batch.instances, batch.instances.train, k) == history_of(short_memory.instances, short_memory.instances.train, batch.ids[k]));
  });
}

TEST_CASE("Streaming ranker: one CTR shard and a buffer as large trains bit for bit as in memory; resuming equals the uninterrupted run",
          "[streaming][ctr][ranker][checkpoint]") {
  const Fixture f;
  RankerConfig config = ranker_config();
  const RankerResult memory = train_ranker(f.memory, config);
  const CtrDataset one_shard = load_ctr_dataset(f.prepare("one", uint64_t{1} << 30), "", kCtr, uint64_t{1} << 30);
  REQUIRE(one_shard.streamed->shards.size() == 1);
  const RankerResult streamed = train_ranker(one_shard, config);
  CHECK(streamed.model_file == memory.model_file);
  CHECK(streamed.test.auc == memory.test.auc);

  // Several shards and a buffer far smaller than the data: another order, the same determinism.
  config.epochs = 3;
  const CtrDataset sharded = load_ctr_dataset(f.prepare("sharded", 211), "", kCtr, 150);
  const RankerResult uninterrupted = train_ranker(sharded, config);
  CHECK(uninterrupted.test.auc > 0.5);
  RankerCheckpoints crashing;
  crashing.checkpoint = f.dir.file("ranker.ckpt");
  RankerObserver observer;
  observer.on_epoch = [](const RankerEpoch& e) {
    if (e.epoch == 2) throw std::runtime_error("simulated crash");
  };
  CHECK_THROWS_WITH(train_ranker(sharded, config, observer, {}, nullptr, crashing), "simulated crash");
  RankerCheckpoints resuming;
  resuming.resume = crashing.checkpoint;
  const RankerResult resumed = train_ranker(sharded, config, {}, {}, nullptr, resuming);
  CHECK(resumed.model_file == uninterrupted.model_file);
  CHECK(resumed.history.size() == 3);
}

TEST_CASE("Streaming AutoFAS: teacher, search and distilled student on a prepared folder give the in-memory file", "[streaming][ctr][autofas]") {
  const Fixture f;
  AutoFasConfig config;
  config.teacher = ranker_config();
  config.search_epochs = 2;
  config.operators = {0, 8};
  config.mixops = 1;
  config.student_epochs = 1;
  nlohmann::json t = {{"target", "test"}, {"candidates", 1000}, {"inputs", {4, 64}}, {"outputs", {1, 8, 64}}};
  t["microseconds"] = {{1.0, 1.5, 2.0}, {2.0, 3.0, 9.0}};
  const LatencyTable table = LatencyTable::from_json(t, "test table");
  const AutoFasResult memory = train_autofas(f.memory, config, table);
  const CtrDataset streamed = load_ctr_dataset(f.prepare("one", uint64_t{1} << 30), "", kCtr, uint64_t{1} << 30);
  const AutoFasResult run = train_autofas(streamed, config, table);
  CHECK(run.search.to_json(config, table) == memory.search.to_json(config, table));
  CHECK(run.model_file == memory.model_file);
}

TEST_CASE("Streaming CTR: corrupt and truncated shards, and configs that disagree with the folder, are refused", "[streaming][ctr]") {
  const Fixture f;
  const std::string folder = f.prepare("prepared", 500);
  const uint32_t row_bytes = ctr_row_bytes(kCtr.max_history);
  const std::string shard = folder + "/ctr-train-00001.bin";

  SECTION("an item out of range names the file, row, offset and field") {
    // Row 7's first history item (row 7 of shard 1 has one: every training target has at least one behaviour).
    const uint64_t offset = sizeof(PreparedHeader) + 7 * uint64_t{row_bytes} + sizeof(CtrRowHead) + 3;
    flip_bits(shard, offset, 0x7f);
    const CtrDataset ctr = load_ctr_dataset(folder, "", kCtr);
    ShuffledCtrShards batches(*ctr.streamed, kCtr.max_history);
    CHECK_THROWS_WITH(read_epoch(batches), Contains(shard) && Contains("row 7 at offset " + std::to_string(offset - sizeof(CtrRowHead) - 3)) &&
                                              Contains("field 'history[0]'") && Contains("corrupt"));
  }
  SECTION("a flipped bit that stays in range fails the shard's checksum") {
    flip_bits(shard, sizeof(PreparedHeader) + 3 * uint64_t{row_bytes} + 4, 1);  // row 3's target: another of the 90 items
    const CtrDataset ctr = load_ctr_dataset(folder, "", kCtr);
    ShuffledCtrShards batches(*ctr.streamed, kCtr.max_history);
    CHECK_THROWS_WITH(read_epoch(batches), Contains(shard) && Contains("checksum") && Contains("corrupt"));
  }
  SECTION("a truncated shard") {
    fs::resize_file(shard, fs::file_size(shard) - 5);
    CHECK_THROWS_WITH(load_ctr_dataset(folder, "", kCtr), Contains(shard) && Contains("truncated at offset"));
  }
  SECTION("max_history above the prepared one; negatives or data_seed not the prepared ones") {
    CHECK_THROWS_WITH(load_ctr_dataset(folder, "", CtrOptions{kCtr.max_history + 1, kCtr.negatives, kCtr.data_seed}),
                      Contains("'max_history' is 7") && Contains("prepared with"));
    CHECK_THROWS_WITH(load_ctr_dataset(folder, "", CtrOptions{kCtr.max_history, 1, kCtr.data_seed}), Contains("'negatives' is 1"));
    CHECK_THROWS_WITH(load_ctr_dataset(folder, "", CtrOptions{kCtr.max_history, kCtr.negatives, 12}), Contains("'data_seed' is 12"));
  }
  SECTION("a folder prepared without --ctr") {
    CHECK_THROWS_WITH(load_ctr_dataset(f.prepare("plain", 500, uint64_t{1} << 24, false), "", kCtr), Contains("prepare --ctr"));
  }
}

TEST_CASE("CLI: prepare --ctr, then train-ranker streams the folder; a folder without --ctr is refused by name", "[streaming][ctr][cli]") {
  const Fixture f;
  const auto run = [](const std::string& arguments) {
    const std::string command = std::string(FUNNEL_CLI) + " " + arguments + " 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe);
    std::string output;
    char buffer[4096];
    while (const size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
    const int status = ::pclose(pipe);
    return std::pair{WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
  };
  const std::string folder = f.dir.file("cli.prepared"), plain = f.dir.file("plain.prepared");
  auto [status, output] = run("prepare " + f.description + " --out " + folder + " --ctr --ctr-max-history 6 --ctr-negatives 2 --ctr-data-seed 11");
  INFO(output);
  REQUIRE(status == 0);
  CHECK_THAT(output, Contains("CTR instances: " + std::to_string(f.memory.instances.train.size()) + " training rows"));
  const std::string config = " --set model=dnn --set max_history=4 --set negatives=2 --set data_seed=11 --set embedding_dim=4 --set hidden=[8]";
  std::tie(status, output) = run("train-ranker --data " + folder + config + " --epochs 1 --threads 1 --shuffle-buffer 100 --out " + f.dir.file("r.funnel"));
  INFO(output);
  CHECK(status == 0);
  CHECK_THAT(output, Contains("streamed from 1 shards through a shuffle buffer of 100 rows"));
  CHECK(fs::file_size(f.dir.file("r.funnel")) > 0);
  REQUIRE(run("prepare " + f.description + " --out " + plain).first == 0);
  std::tie(status, output) = run("train-ranker --data " + plain + config + " --out " + f.dir.file("r2.funnel"));
  CHECK(status != 0);
  CHECK_THAT(output, Contains("prepare --ctr"));
}
