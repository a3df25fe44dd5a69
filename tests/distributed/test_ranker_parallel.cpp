// The ranking stage data-parallel (train/ranking/ranker_parallel.hpp): under mpirun -np 2 (ctest's
// distributed_2_ranks) 2 ranks with per-rank batch b against 1 rank with batch 2b, sharded tables against
// replicated ones, a resumed run against an uninterrupted one; run alone (distributed_1_process), the CLI under
// `mpirun -np 2` with one rank failing.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <numeric>
#include <sstream>
#include <tuple>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "support.hpp"
#include "train/data/ctr_data.hpp"
#include "train/data/dataset.hpp"
#include "train/data/synthetic.hpp"
#include "train/distributed/communicator.hpp"
#include "train/core/rng.hpp"
#include "train/distributed/rank_checkpoint.hpp"
#include "train/ranking/ranker_model.hpp"
#include "train/ranking/ranker_parallel.hpp"
#include "train/ranking/ranker_training.hpp"

using namespace funnel::train;

namespace {

using funnel::test::small_ctr;

RankerConfig small_config(const std::string& model, const std::string& loss) {
  RankerConfig config = funnel::test::small_ranker_config();
  config.model = model;
  config.loss = loss;
  config.epochs = 1;
  config.threads = 1;
  config.learning_rate = 3e-3f;
  if (model == "can") config.user_features = {"age", "region"}, config.coaction = {"item_id:item_id", "item_id:category", "item_id:region"};
  return config;
}

// Every parameter of a trained model, in order.
std::vector<float> values_of(RankerModel& model) {
  std::vector<float> out;
  for (const Parameter* p : model.parameters()) out.insert(out.end(), p->value.begin(), p->value.end());
  return out;
}

double max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
  return worst;
}

// A folder every rank of `comm` sees (rank 0 makes it; the ranks share this host).
struct SharedDir {
  std::unique_ptr<funnel::test::TempDir> owned;
  std::string path;
  explicit SharedDir(Communicator& comm) {
    if (comm.rank() == 0) owned = std::make_unique<funnel::test::TempDir>(), path = owned->path();
    comm.broadcast(path, 0);
  }
};

[[maybe_unused]] std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The process of MPI rank `rank` (OMPI_COMM_WORLD_RANK in its environment) whose command line mentions
// `marker`, or 0.
[[maybe_unused]] pid_t rank_process(int rank, const std::string& marker) {
  const std::string wanted = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (read_file(entry.path().string() + "/cmdline").find(marker) == std::string::npos) continue;
    std::istringstream environment(read_file(entry.path().string() + "/environ"));
    for (std::string variable; std::getline(environment, variable, '\0');)
      if (variable == wanted) return static_cast<pid_t>(std::stol(name));
  }
  return 0;
}

// Runs `command` through the shell and returns its exit code (-1: killed by a signal or still running after
// `limit`, then killed).
[[maybe_unused]] int run_shell(const std::string& command, std::chrono::seconds limit = std::chrono::seconds(120),
              const std::function<bool()>& meanwhile = {}) {
  const pid_t child = fork();
  if (child == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (waitpid(child, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-child, SIGKILL);
      waitpid(child, &status, 0);
      return -1;
    }
    if (meanwhile && meanwhile()) continue;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

// Equivalence: the global batch, the loss normalisation (GHM-C's histogram over the global batch) and the
// reductions make 2 ranks x b compute what 1 rank x 2b computes. Not bit for bit: a gradient is summed over
// the batch in another order (each rank's half, then the two halves), so values differ by float rounding,
// measured at most 1.2e-7 after the 78 steps here (one epoch of 4956 instances). The tolerance, 2e-5, is under
// 1% of one Adam step (the learning rate, 3e-3, bounds a step's size per value): a rank that trained on the
// wrong instances, a gradient not summed or summed twice, or a loss divided by the rank's batch instead of the
// global one moves values by whole steps and fails it (the last measured 1.0e-3).
TEST_CASE("Distributed ranker: 2 ranks with batch b train as 1 rank with batch 2b", "[distributed][ranker][two_ranks]") {
  Communicator& comm = world();
  if (comm.size() != 2) {
    WARN("skipped: needs mpirun -np 2 (ctest's distributed_2_ranks runs it)");
    return;
  }
  // The last: the tables under a row-wise sparse optimiser (train/core/sparse_optimizer.hpp), the MLP under Adam.
  for (const auto& [model, loss, sparse] : {std::tuple{"dnn", "bce", "none"}, std::tuple{"can", "bce", "none"}, std::tuple{"can", "ghm", "none"},
                                            std::tuple{"can", "bce", "rowwise_adagrad"}}) {
    INFO(model << " / " << loss << " / sparse optimiser " << sparse);
    RankerConfig config = small_config(model, loss);
    config.sparse_optimizer = sparse;
    config.sparse_optimizer_min_rows = 0;  // every table (the default leaves tables under 10,000 rows to Adam)
    config.batch_size = 32;
    std::unique_ptr<RankerModel> parallel_model, single_model;
    const RankerResult parallel = train_ranker(small_ctr(), config, {}, {}, &parallel_model, {}, comm);
    config.batch_size = 64;
    const RankerResult single = train_ranker(small_ctr(), config, {}, {}, &single_model, {}, local_communicator());
    if (comm.rank() != 0) continue;  // rank 0 holds the whole trained model
    REQUIRE(parallel.history.size() == 1);
    CHECK(parallel.history[0].loss == Approx(single.history[0].loss).epsilon(1e-5));
    CHECK(max_difference(values_of(*parallel_model), values_of(*single_model)) < 2e-5);
    CHECK(parallel.validation.auc == Approx(single.validation.auc).margin(1e-4));
    CHECK(!parallel.model_file.empty());
  }
}

// A sharded CAN step (its 6 tables: ids, user features, co-action) makes one row exchange for all the tables
// (4 collective calls) and one all-reduce of the dense gradients and the loss: 5 in all, whatever the number of
// tables (it was 3 Alltoallv, each after an Alltoall of counts, per table).
TEST_CASE("Distributed ranker: a sharded step makes 5 collective calls for all its tables", "[distributed][ranker]") {
  Communicator& comm = world();
  if (comm.size() != 2) {
    WARN("needs mpirun -np 2 (ctest's distributed_2_ranks runs it)");
    return;
  }
  RankerConfig config = small_config("can", "bce");
  config.batch_size = 16;
  RankerModel model(small_ctr().data, config);
  Rng rng(config.seed);
  model.init(rng);
  RankerParallel parallel(comm, model, config, small_ctr().instances);
  REQUIRE(parallel.sharded());
  size_t tables = 0;
  for (const Parameter* p : model.parameters()) tables += p->sparse;
  CHECK(tables >= 4);
  std::vector<uint32_t> global(32);
  std::iota(global.begin(), global.end(), 0u);
  for (int step = 0; step < 2; ++step) {
    const uint64_t before = comm.collective_calls();
    parallel.fetch_rows(parallel.local_part(global));
    const float loss = parallel.reduce_gradients(1.0f);
    CHECK(comm.collective_calls() - before == 5);
    CHECK(loss == 2.0f);  // the loss rides in the dense all-reduce
  }
}

// Memory divided: under sharding the model reads and writes the batch's rows in the shards' caches
// (RankerModel::bind_rows), so no rank holds a whole table's values or gradients: each holds the rows it owns
// (the ranks' shards are the table once) and a cache of the rows its batch reads, on a table (6,000 items) far
// bigger than a batch's rows. Rank 0 holds whole tables from gather_tables (the export) to the next step only.
TEST_CASE("Distributed ranker: sharded tables hold only each rank's rows", "[distributed][ranker][two_ranks]") {
  Communicator& comm = world();
  if (comm.size() != 2) {
    WARN("skipped: needs mpirun -np 2 (ctest's distributed_2_ranks runs it)");
    return;
  }
  funnel::test::TempDir dir;  // each rank writes the same dataset (same options) to its own folder
  const Dataset data = load_dataset(write_synthetic_dataset(dir.path(), SyntheticOptions{100, 6000, 8, 6, 0.8, 3, 0.0}));
  const CtrInstances instances = build_ctr_instances(data, CtrOptions{5, 1, 3});
  RankerConfig config = small_config("can", "bce");
  config.batch_size = 8;
  RankerModel model(data, config, /*whole_tables=*/false);  // as train_ranker makes it for a sharded run
  Rng rng(config.seed);
  model.init(rng);
  RankerParallel parallel(comm, model, config, instances);
  REQUIRE(parallel.sharded());
  // Each rank drew its own rows (per-row initialisation), the values the whole table has in one process.
  RankerModel whole(data, config);
  Rng same(config.seed);
  whole.init(same);
  for (size_t t = 0; t < parallel.shards().size(); ++t) {
    const ShardedTable& shard = *parallel.shards()[t];
    const Parameter& table = *whole.parameters()[t];
    REQUIRE(table.name == shard.shard().name);
    bool same_rows = true;
    for (size_t i = 0; i < shard.owned().size(); ++i)
      for (size_t k = 0; k < table.row_size; ++k)
        same_rows = same_rows && shard.shard().value[i * table.row_size + k] == table.value[shard.owned()[i] * table.row_size + k];
    CHECK(same_rows);
  }
  std::vector<const Parameter*> tables;
  for (const Parameter* p : model.parameters())
    if (p->sparse) tables.push_back(p);
  REQUIRE(parallel.shards().size() == tables.size());
  const auto check_divided = [&](size_t max_cache_rows) {
    for (size_t t = 0; t < tables.size(); ++t) {
      INFO(tables[t]->name);
      const ShardedTable& shard = *parallel.shards()[t];
      const size_t rows = tables[t]->shape[0], dim = tables[t]->shape[1];
      CHECK(tables[t]->value.capacity() == 0);  // the model's own array: none
      CHECK(tables[t]->grad.capacity() == 0);
      CHECK(shard.shard().value.size() == shard.owned().size() * dim);
      CHECK(shard.shard().grad.size() == shard.owned().size() * dim);
      std::vector<double> owned{static_cast<double>(shard.owned().size())};
      comm.allreduce_sum(owned);
      CHECK(owned[0] == static_cast<double>(rows));  // the shards partition the table
      if (rows >= 1000) CHECK(shard.owned().size() < rows * 6 / 10);  // about half each
      CHECK(shard.cache().value.size() <= max_cache_rows * dim);
    }
  };
  check_divided(0);
  std::vector<uint32_t> global(16);
  std::iota(global.begin(), global.end(), 0u);
  std::vector<float> logits(8), dlogits(8, 0.01f);
  // A batch reads at most 8 x (1 candidate + 5 behaviours) rows of an item table.
  const size_t max_rows = 8 * 6;
  for (int step = 0; step < 2; ++step) {
    const std::span<const uint32_t> batch = parallel.local_part(global);
    parallel.fetch_rows(batch);
    model.forward(instances, instances.train, batch, logits.data());
    model.backward(dlogits);
    parallel.reduce_gradients(0.0f);
    check_divided(max_rows);
    std::iota(global.begin(), global.end(), 16u);
  }
  parallel.gather_tables();
  for (const Parameter* table : tables) CHECK(table->value.size() == (comm.rank() == 0 ? table->shape[0] * table->shape[1] : 0));
  CHECK((model.view().item_inputs[0].table != nullptr) == (comm.rank() == 0));  // the SDK's view over rank 0's gathered tables
  parallel.fetch_rows(parallel.local_part(global));  // frees them
  check_divided(max_rows);
}

// The same run with tables sharded (each rank optimises the rows it owns) and replicated (every rank all of
// them): bit for bit, since with 2 ranks both sum a row's gradient as rank 0's + rank 1's, and a shard's
// dense Adam step is the deferred one's arithmetic.
TEST_CASE("Distributed ranker: sharded tables train as replicated ones", "[distributed][ranker][two_ranks]") {
  Communicator& comm = world();
  if (comm.size() != 2) {
    WARN("skipped: needs mpirun -np 2 (ctest's distributed_2_ranks runs it)");
    return;
  }
  for (const char* optimizer : {"adam", "lazy_adam", "sparse_adam", "momentum_tail_adam", "rowwise_adagrad"}) {
    INFO(optimizer);
    RankerConfig config = small_config("can", "bce");
    config.batch_size = 32;
    // The tables' optimiser, on every table (the default leaves tables under 10,000 rows to Adam), Adam for the rest.
    config.sparse_optimizer_min_rows = 0;
    if (std::string(optimizer) == "adam" || std::string(optimizer) == "lazy_adam") {
      config.optimizer = optimizer;
      config.sparse_optimizer = "none";
    } else {
      config.sparse_optimizer = optimizer;
    }
    std::unique_ptr<RankerModel> sharded_model, replicated_model;
    const RankerResult sharded = train_ranker(small_ctr(), config, {}, {}, &sharded_model, {}, comm);
    config.embedding_sharding = "replicated";
    const RankerResult replicated = train_ranker(small_ctr(), config, {}, {}, &replicated_model, {}, comm);
    if (comm.rank() != 0) continue;
    // (The files differ: their metadata holds the config, embedding_sharding included.)
    CHECK(sharded.validation.auc == replicated.validation.auc);
    CHECK(max_difference(values_of(*sharded_model), values_of(*replicated_model)) == 0.0);
    CHECK(sharded.history[0].loss == replicated.history[0].loss);
  }
}

TEST_CASE("Distributed ranker: a resumed run reproduces the uninterrupted one", "[distributed][ranker][checkpoint][two_ranks]") {
  Communicator& comm = world();
  if (comm.size() != 2) {
    WARN("skipped: needs mpirun -np 2 (ctest's distributed_2_ranks runs it)");
    return;
  }
  RankerConfig config = small_config("can", "ghm");
  config.batch_size = 32;
  config.epochs = 2;
  const RankerResult uninterrupted = train_ranker(small_ctr(), config, {}, {}, nullptr, {}, comm);

  const SharedDir dir(comm);
  RankerCheckpoints first;
  first.checkpoint = dir.path + "/ranker.ckpt";
  config.epochs = 1;
  train_ranker(small_ctr(), config, {}, {}, nullptr, first, comm);
  // Each rank wrote its own file of epoch 1, and rank 0 the manifest naming it.
  CHECK(std::ifstream(rank_checkpoint_path(first.checkpoint, comm.rank(), 1)).good());
  CHECK(std::ifstream(rank_manifest_path(first.checkpoint)).good());
  RankerCheckpoints resuming;
  resuming.resume = first.checkpoint;
  config.epochs = 2;
  const RankerResult resumed = train_ranker(small_ctr(), config, {}, {}, nullptr, resuming, comm);
  CHECK(resumed.history.size() == 2);
  CHECK(resumed.model_file == uninterrupted.model_file);  // empty on rank 1, the file on rank 0
  comm.barrier();  // rank 0 removes the folder
}

// Alone (ctest's distributed_1_process): the CLI under mpirun -np 2, with rank 1's checkpoint unreadable on
// resume. Every rank stops, the error names rank 1 and its file, and rank 0's checkpoint is left as it was.
TEST_CASE("Distributed ranker: a rank that fails stops every rank, naming it; the checkpoints stay", "[distributed][ranker][failure][cli]") {
#ifndef FUNNEL_MPIEXEC
  WARN("skipped: built without MPI");
#else
  if (world().distributed()) return;  // it launches its own ranks: run alone
  funnel::test::TempDir dir;
  const std::string data = write_synthetic_dataset(dir.file("data"), SyntheticOptions{150, 80, 5, 8, 0.8, 3, 0.0});
  const std::string cli = std::string(FUNNEL_MPIEXEC) + " -np 2 " + FUNNEL_CLI + " train-ranker --data " + data + " --out " +
                          dir.file("model.funnel") + " --set model=dnn --set batch_size=32 --set threads=1 --set max_history=5 --checkpoint " +
                          dir.file("ck");
  const auto run = [&](const std::string& args) {
    const std::string command = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 " + cli + " " +
                                args + " > " + dir.file("out.txt") + " 2>&1";
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  REQUIRE(run("--set epochs=1") == 0);
  const std::string rank0 = read_file(dir.file("ck.rank0.e1"));
  REQUIRE(!rank0.empty());
  {
    std::ofstream broken(dir.file("ck.rank1.e1"), std::ios::binary | std::ios::trunc);
    broken << "not a checkpoint";
  }
  const int code = run("--set epochs=2 --resume " + dir.file("ck"));
  const std::string output = read_file(dir.file("out.txt"));
  INFO(output);
  CHECK(code != 0);
  CHECK_THAT(output, Catch::Contains("rank 1") && Catch::Contains("ck.rank1.e1"));
  CHECK(read_file(dir.file("ck.rank0.e1")) == rank0);
#endif
}

// The epoch the manifest of checkpoint `base` names (0 while there is none). Written atomically: whole or absent.
[[maybe_unused]] uint32_t manifest_epoch(const std::string& base) {
  const std::string text = read_file(rank_manifest_path(base));
  return text.empty() ? 0 : nlohmann::json::parse(text).at("epoch").get<uint32_t>();
}

// Epochs of the CLI runs: enough that a loaded machine's poll still sees the first set before the run ends.
[[maybe_unused]] constexpr uint32_t kRankerEpochs = 10;

// The command that trains the ranker on `data` for kRankerEpochs epochs under mpirun -np 2, its output in `<out>.log`.
[[maybe_unused]] std::string ranker_command(const funnel::test::TempDir& dir, const std::string& data, const std::string& out,
                                            const std::string& args, const std::string& env = "") {
  return env + " OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 " + std::string(FUNNEL_MPIEXEC) +
         " -np 2 -x FUNNEL_FAIL_CHECKPOINT " + FUNNEL_CLI + " train-ranker --data " + data + " --out " + dir.file(out) +
         " --set model=dnn --set batch_size=32 --set threads=1 --set max_history=5 --set epochs=" + std::to_string(kRankerEpochs) + " " + args + " > " + dir.file(out + ".log") +
         " 2>&1";
}

// Alone: the CLI under mpirun -np 2, rank 1 killed (SIGKILL) once the manifest names epoch 1 (the set of epoch 1
// complete, whatever rank 1 is doing then, saving the next one included). mpirun ends rank 0 too and exits
// non-zero naming rank 1; the set the manifest names is whole, and resuming from it gives the uninterrupted
// run's model file byte for byte.
TEST_CASE("Distributed ranker: a rank that dies stops the run; its checkpoints resume to the uninterrupted model", "[distributed][ranker][failure][cli]") {
#ifndef FUNNEL_MPIEXEC
  WARN("skipped: built without MPI");
#else
  if (world().distributed()) return;  // it launches its own ranks: run alone
  funnel::test::TempDir dir;
  const std::string data = write_synthetic_dataset(dir.file("data"), SyntheticOptions{150, 80, 5, 8, 0.8, 3, 0.0});
  const auto command = [&](const std::string& out, const std::string& args) { return ranker_command(dir, data, out, args); };
  REQUIRE(run_shell(command("whole.funnel", "")) == 0);

  bool killed = false;
  uint32_t killed_after = 0;
  const int code = run_shell(command("killed.funnel", "--checkpoint " + dir.file("ck")), std::chrono::seconds(120), [&] {
    if (killed || manifest_epoch(dir.file("ck")) < 1) return false;
    if (const pid_t rank1 = rank_process(1, dir.file("killed.funnel")); rank1 > 0) killed = kill(rank1, SIGKILL) == 0;
    killed_after = manifest_epoch(dir.file("ck"));
    return false;
  });
  const std::string output = read_file(dir.file("killed.funnel.log"));
  INFO(output);
  REQUIRE(killed);
  CHECK(code != 0);
  CHECK_THAT(output, Catch::Contains("rank 1"));
  CHECK(!std::filesystem::exists(dir.file("killed.funnel")));
  const uint32_t epoch = manifest_epoch(dir.file("ck"));
  CHECK(epoch >= killed_after);
  CHECK(epoch < kRankerEpochs);
  for (int rank = 0; rank < 2; ++rank) CHECK(std::filesystem::exists(rank_checkpoint_path(dir.file("ck"), rank, epoch)));

  CHECK(run_shell(command("resumed.funnel", "--checkpoint " + dir.file("ck") + " --resume " + dir.file("ck"))) == 0);
  INFO(read_file(dir.file("resumed.funnel.log")));
  CHECK_THAT(read_file(dir.file("resumed.funnel.log")), Catch::Contains("resumed from"));
  CHECK(read_file(dir.file("resumed.funnel")) == read_file(dir.file("whole.funnel")));
  // The resumed run's last save replaced the older sets: the manifest names the last epoch, and only its files remain.
  CHECK(manifest_epoch(dir.file("ck")) == kRankerEpochs);
  for (int rank = 0; rank < 2; ++rank) {
    CHECK(std::filesystem::exists(rank_checkpoint_path(dir.file("ck"), rank, kRankerEpochs)));
    CHECK(!std::filesystem::exists(rank_checkpoint_path(dir.file("ck"), rank, epoch)));
  }
#endif
}

// Alone: the CLI under mpirun -np 2, rank 1's write of its epoch-2 checkpoint failing (FUNNEL_FAIL_CHECKPOINT)
// after rank 0's succeeded. Every rank stops naming rank 1 and its file; the manifest still names epoch 1, whose
// files are whole, rank 0's epoch-2 file is gone, and resuming gives the uninterrupted run's model byte for byte.
TEST_CASE("Distributed ranker: a save failing on one rank keeps the previous set, which resumes to the uninterrupted model",
          "[distributed][ranker][failure][cli]") {
#ifndef FUNNEL_MPIEXEC
  WARN("skipped: built without MPI");
#else
  if (world().distributed()) return;  // it launches its own ranks: run alone
  funnel::test::TempDir dir;
  const std::string data = write_synthetic_dataset(dir.file("data"), SyntheticOptions{150, 80, 5, 8, 0.8, 3, 0.0});
  REQUIRE(run_shell(ranker_command(dir, data, "whole.funnel", "")) == 0);

  const int code = run_shell(ranker_command(dir, data, "failed.funnel", "--checkpoint " + dir.file("ck"), "FUNNEL_FAIL_CHECKPOINT=1:2"));
  const std::string output = read_file(dir.file("failed.funnel.log"));
  INFO(output);
  CHECK(code != 0);
  CHECK_THAT(output, Catch::Contains("rank 1: cannot write checkpoint " + dir.file("ck.rank1.e2")) &&
                         Catch::Contains("FUNNEL_FAIL_CHECKPOINT"));
  CHECK(!std::filesystem::exists(dir.file("failed.funnel")));
  CHECK(manifest_epoch(dir.file("ck")) == 1);
  CHECK(std::filesystem::exists(dir.file("ck.rank0.e1")));
  CHECK(std::filesystem::exists(dir.file("ck.rank1.e1")));
  CHECK(!std::filesystem::exists(dir.file("ck.rank0.e2")));
  CHECK(!std::filesystem::exists(dir.file("ck.rank1.e2")));

  CHECK(run_shell(ranker_command(dir, data, "resumed.funnel", "--resume " + dir.file("ck"))) == 0);
  INFO(read_file(dir.file("resumed.funnel.log")));
  CHECK_THAT(read_file(dir.file("resumed.funnel.log")), Catch::Contains("resumed from"));
  CHECK(read_file(dir.file("resumed.funnel")) == read_file(dir.file("whole.funnel")));
#endif
}
