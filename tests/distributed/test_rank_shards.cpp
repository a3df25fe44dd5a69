// The two-tower trainer on 2 ranks, each reading only its own shards of a prepared folder (docs/distributed.md,
// "Where the data must be"): run under mpirun -np 2, every rank prepares its own copy of the same folder.
//  - The rows the ranks train on in an epoch are the training rows minus the dropped tail, each exactly once,
//    and no rank opens another's shards: each rank's copy holds only its own (the others are deleted).
//  - Quality: 2 ranks on their shards reach the test Recall@K of 1 process on all of them within noise.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <map>
#include <tuple>

#include "support.hpp"
#include "train/data/interaction_stream.hpp"
#include "train/data/prepare.hpp"
#include "train/data/prepared.hpp"
#include "train/data/split.hpp"
#include "train/data/synthetic.hpp"
#include "train/distributed/communicator.hpp"
#include "train/retrieval/two_tower_training.hpp"

using namespace funnel::train;
namespace fs = std::filesystem;

namespace {

// A synthetic dataset and its prepared folder, made by this rank in a folder of its own.
struct PreparedFixture {
  funnel::test::TempDir dir;
  std::string description, folder;
  PreparedFixture(uint32_t users, uint32_t items, uint64_t shard_rows) {
    SyntheticOptions options;
    options.users = users;
    options.items = items;
    options.categories = 6;
    options.mean_interactions = 12;
    options.seed = 7;
    description = write_synthetic_dataset(dir.file("csv"), options);
    PrepareOptions prepare;
    prepare.shard_rows = shard_rows;
    folder = dir.file("prepared");
    prepare_dataset(description, folder, prepare);
  }
};

TrainConfig quick_config() {
  TrainConfig config;
  config.embedding_dim = 8;
  config.hidden = {16};
  config.output_dim = 8;
  config.batch_size = 32;
  config.epochs = 2;
  config.threads = 1;
  config.drift_sample = 0;
  config.shuffle_buffer = 200;
  return config;
}

// The rows a reader hands the loop, epoch by epoch.
class Recording final : public InteractionBatches {
 public:
  explicit Recording(InteractionBatches& rows) : rows_(rows) {}
  uint64_t rows() const override { return rows_.rows(); }
  void start_epoch(Rng& rng) override {
    epochs.emplace_back();
    rows_.start_epoch(rng);
  }
  size_t next(size_t count, std::vector<Interaction>* out) override {
    const size_t before = out->size(), n = rows_.next(count, out);
    epochs.back().insert(epochs.back().end(), out->begin() + static_cast<long>(before), out->end());
    return n;
  }
  bool rank_local() const override { return rows_.rank_local(); }
  std::vector<std::vector<Interaction>> epochs;

 private:
  InteractionBatches& rows_;
};

using Key = std::tuple<uint32_t, uint32_t, int64_t>;
std::map<Key, int> multiset(const std::vector<Interaction>& rows) {
  std::map<Key, int> out;
  for (const Interaction& x : rows) ++out[{x.user, x.item, x.timestamp}];
  return out;
}

}  // namespace

TEST_CASE("Two-tower on 2 ranks, each on its own shards: every training row once an epoch but the dropped tail; "
          "no rank opens another's shards",
          "[two_ranks]") {
  Communicator& comm = world();
  REQUIRE(comm.size() == 2);
  const uint32_t rank = static_cast<uint32_t>(comm.rank());
  // Shards of 500 rows, the last shorter: the ranks hold different counts, so one drops its excess.
  const PreparedFixture f(300, 150, 500);
  const Dataset data = load_dataset(f.description);
  const std::vector<Interaction> all = leave_last_out(data).train;
  {
    const PreparedDataset whole = open_prepared(f.folder);
    REQUIRE(whole.shards.size() >= 4);
    // This rank's copy keeps its own shards only: opening or reading another's would fail.
    for (size_t i = 0; i < whole.shards.size(); ++i)
      if (i % 2 != rank) REQUIRE(fs::remove(whole.shards[i].path));
  }
  const PreparedDataset prepared = open_prepared(f.folder, rank, 2);
  CHECK_THROWS(open_prepared(f.folder));  // the deleted shards are really gone
  ShuffledShards shards(prepared, quick_config().shuffle_buffer, rank, 2, 64);
  Recording recording(shards);
  TrainOptions options;
  options.communicator = &comm;
  const TrainResult result = train_two_tower(prepared.data, prepared.split, recording, quick_config(), options);

  const uint64_t mine = shards.rows();
  const std::vector<uint64_t> held = comm.allgatherv<uint64_t>(std::span<const uint64_t>(&mine, 1));
  const uint64_t smallest = std::min(held[0], held[1]);
  REQUIRE(held[0] + held[1] == all.size());
  REQUIRE(held[0] != held[1]);  // a tail to drop
  CHECK(result.dropped_rows == all.size() - 2 * smallest);
  CHECK(result.train_interactions == 2 * smallest);
  CHECK(static_cast<size_t>(result.steps) == 2 * ((smallest + 31) / 32));
  REQUIRE(recording.epochs.size() == 2);
  const std::map<Key, int> expected = multiset(all);
  for (const std::vector<Interaction>& epoch : recording.epochs) {
    CHECK(epoch.size() == smallest);
    const std::vector<Interaction> together = comm.allgatherv<Interaction>(epoch);
    const std::map<Key, int> trained = multiset(together);
    CHECK(together.size() == all.size() - result.dropped_rows);
    size_t extra = 0;  // rows trained more often than they are in the training set, or not in it at all
    for (const auto& [key, n] : trained) extra += static_cast<size_t>(std::max(0, n - (expected.count(key) ? expected.at(key) : 0)));
    CHECK(extra == 0);
  }
  // The epochs drew different orders (the rank that drops, different rows) from the checkpointed generator.
  const auto keys = [](const std::vector<Interaction>& rows) {
    std::vector<Key> out;
    for (const Interaction& x : rows) out.emplace_back(x.user, x.item, x.timestamp);
    return out;
  };
  CHECK(keys(recording.epochs[0]) != keys(recording.epochs[1]));
  if (mine > smallest) CHECK(multiset(recording.epochs[0]) != multiset(recording.epochs[1]));
}

// Quality. 2 ranks on their own shards train on another order of the rows (their own shuffles, the dropped
// tail) than 1 process over all of them, so the two models differ as two seeds do. Their test Recall@K
// is a share of U test users; for a recall p each estimate has a standard deviation sqrt(p (1 - p) / U) from
// the users alone, and the difference of two runs sqrt(2) times that. The check allows 3 of those (about
// 0.06 at p = 0.3 with 1,000 users): wrong rows (another rank's, or one rank's twice), gradients lost
// between ranks or a rank training alone fall far outside it, while two orders of the same rows fall
// outside it about once in 400 seeds. The runs are seeded (one thread), so the figures repeat run after run
// (measured here: 0.479 against 0.468 at Recall@50, 3 sigma 0.067).
TEST_CASE("Two-tower on 2 ranks, each on its own shards: test Recall@K within noise of 1 process on all shards", "[two_ranks]") {
  Communicator& comm = world();
  REQUIRE(comm.size() == 2);
  const uint32_t rank = static_cast<uint32_t>(comm.rank());
  const PreparedFixture f(1000, 300, 2000);
  TrainConfig config = quick_config();
  config.epochs = 4;
  config.shuffle_buffer = 1000;
  const PreparedDataset mine = open_prepared(f.folder, rank, 2);
  REQUIRE(mine.shards.size() >= 4);
  ShuffledShards shards(mine, config.shuffle_buffer, rank, 2);
  TrainOptions options;
  options.communicator = &comm;
  const TrainResult two = train_two_tower(mine.data, mine.split, shards, config, options);
  if (rank != 0) return;
  const PreparedDataset all = open_prepared(f.folder);
  ShuffledShards every(all, config.shuffle_buffer);
  config.batch_size *= 2;  // the global batch of the 2 ranks
  TrainOptions alone;
  alone.communicator = &local_communicator();
  const TrainResult one = train_two_tower(all.data, all.split, every, config, alone);
  const uint32_t k = config.select_k;
  const double p1 = one.test.recall_at(k), p2 = two.test.recall_at(k), popular = one.popular_test.recall_at(k);
  const double users = static_cast<double>(one.test.users);
  const double sigma = std::sqrt(2.0 * std::max(p1 * (1 - p1), 0.05) / users);
  INFO("Recall@" << k << ": 1 process " << p1 << ", 2 ranks " << p2 << ", most popular " << popular << "; 3 sigma " << 3 * sigma);
  CHECK(std::fabs(p1 - p2) < 3 * sigma);
  // Both trained: far above a random ranking's K / items (the popularity baseline, printed, is strong at
  // K = 50 of 300 items on this generator).
  const double random = static_cast<double>(k) / static_cast<double>(all.data.items.size());
  CHECK(p1 > 2 * random);
  CHECK(p2 > 2 * random);
}
