// `mpirun -np 2 funnel train` as a user runs it (launched from here, on this host's loopback): it trains; a
// rank that fails stops every rank with an error naming the rank and the cause and leaves the last
// checkpoint whole; resuming from it gives the uninterrupted run's model file byte for byte; another world
// size is refused, saying which one wrote the checkpoint.
#include <catch2/catch.hpp>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "support.hpp"
#include "train/core/checkpoint.hpp"
#include "train/data/synthetic.hpp"

using Catch::Matchers::Contains;

namespace {

[[maybe_unused]] std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Runs a shell command, its stderr into `err`; returns the exit code.
[[maybe_unused]] int run(const std::string& command, const std::string& err) {
  const int status = std::system((command + " >/dev/null 2>" + err).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

}  // namespace

TEST_CASE("mpirun -np 2 funnel train: a failing rank stops every rank, the checkpoint stays whole, resuming == uninterrupted", "[cli]") {
#ifndef FUNNEL_MPIEXEC
  // ctest runs it only in a build with MPI (distributed_cli); a build without reports that test as skipped.
  WARN("skipped: built without MPI");
#else
  funnel::test::TempDir dir;
  funnel::train::SyntheticOptions synthetic;
  synthetic.users = 300;
  synthetic.items = 150;
  synthetic.categories = 6;
  synthetic.mean_interactions = 10;
  const std::string data = funnel::train::write_synthetic_dataset(dir.file("data"), synthetic);
  const std::string mpirun = std::string(FUNNEL_MPIEXEC) + " -np 2 -x FUNNEL_FAIL_AT_STEP ";
  const std::string train = std::string(FUNNEL_CLI) + " train --data " + data +
                            " --epochs 3 --batch-size 32 --threads 1 --set drift_sample=0 --set negatives=cbns --set memory_size=64"
                            " --set cbns_warmup_steps=5 --checkpoint " + dir.file("ck");
  ::unsetenv("FUNNEL_FAIL_AT_STEP");

  REQUIRE(run(mpirun + train + " --out " + dir.file("full.funnel") + " --report " + dir.file("full.json"), dir.file("err0")) == 0);
  const nlohmann::json report = nlohmann::json::parse(read_text(dir.file("full.json")));
  CHECK(report.at("ranks") == 2);
  const long steps_per_epoch = report.at("steps").get<long>() / 3;
  REQUIRE(steps_per_epoch >= 4);
  CHECK(report.at("exchange_bytes_per_step").get<double>() > 0);
  // The full run left one set: the manifest and each rank's file of epoch 3.
  CHECK(nlohmann::json::parse(read_text(dir.file("ck.ranks"))).at("epoch") == 3);
  CHECK(std::filesystem::exists(dir.file("ck.rank1.e3")));
  CHECK(!std::filesystem::exists(dir.file("ck.rank1.e2")));
  for (const char* file : {"ck.ranks", "ck.rank0.e3", "ck.rank1.e3"}) std::filesystem::remove(dir.file(file));

  // Rank 1 fails in the second epoch, after the first epoch's checkpoints were written.
  const long failing_step = steps_per_epoch + 2;
  ::setenv("FUNNEL_FAIL_AT_STEP", ("1:" + std::to_string(failing_step)).c_str(), 1);
  CHECK(run(mpirun + train + " --out " + dir.file("failed.funnel"), dir.file("err1")) != 0);
  ::unsetenv("FUNNEL_FAIL_AT_STEP");
  const std::string err = read_text(dir.file("err1"));
  INFO(err);
  CHECK_THAT(err, Contains("rank 1: injected failure after step " + std::to_string(failing_step)));
  CHECK(!std::filesystem::exists(dir.file("failed.funnel")));
  CHECK(nlohmann::json::parse(read_text(dir.file("ck.ranks"))).at("epoch") == 1);
  for (const char* rank : {"ck.rank0.e1", "ck.rank1.e1"}) {
    INFO(rank);
    const funnel::train::Checkpoint ck = funnel::train::load_checkpoint(dir.file(rank));
    CHECK(ck.header.at("epochs_done") == 1);
    CHECK(ck.header.at("identity").at("world_size") == 2);
  }

  // Another world size is refused, naming the one that wrote the files.
  CHECK(run(train + " --resume " + dir.file("ck") + " --out " + dir.file("alone.funnel"), dir.file("err2")) != 0);
  CHECK_THAT(read_text(dir.file("err2")), Contains("written by a run of 2 ranks") && Contains("mpirun -np 2"));

  REQUIRE(run(mpirun + train + " --resume " + dir.file("ck") + " --out " + dir.file("resumed.funnel"), dir.file("err3")) == 0);
  CHECK(read_text(dir.file("resumed.funnel")) == read_text(dir.file("full.funnel")));
#endif
}

// Only train and train-ranker are data-parallel. Every other verb, started as one of 2 mpirun processes,
// refuses with one message and a non-zero exit instead of running twice over the same files (train-funnel
// used to train retrieval across the ranks and have every rank write the retrieval file).
TEST_CASE("mpirun -np 2 funnel <a verb that is not data-parallel>: refused, nothing written", "[cli]") {
#ifndef FUNNEL_MPIEXEC
  WARN("skipped: built without MPI");
#else
  funnel::test::TempDir dir;
  funnel::train::SyntheticOptions synthetic;
  synthetic.users = 120;
  synthetic.items = 60;
  synthetic.categories = 4;
  synthetic.mean_interactions = 8;
  const std::string data = funnel::train::write_synthetic_dataset(dir.file("data"), synthetic);
  const std::string mpirun = std::string(FUNNEL_MPIEXEC) + " -np 2 " + FUNNEL_CLI;
  for (const std::string& args : {" train-funnel --data " + data + " --out " + dir.file("funnel_out") + " --threads 1",
                                  " generate --out " + dir.file("generated"), " prepare " + data + " --out " + dir.file("prepared")}) {
    INFO(args);
    CHECK(run(mpirun + args, dir.file("err")) != 0);
    const std::string err = read_text(dir.file("err"));
    INFO(err);
    const std::string verb = args.substr(1, args.find(' ', 1) - 1);
    CHECK_THAT(err, Contains("'" + verb + "' is not data-parallel") && Contains("without mpirun"));
  }
  CHECK(!std::filesystem::exists(dir.file("funnel_out")));
  CHECK(!std::filesystem::exists(dir.file("generated")));
  CHECK(!std::filesystem::exists(dir.file("prepared")));
#endif
}

// `mpirun -np 2 funnel train --data <prepared folder>`: each rank reads its own shards. A rank whose shard is
// missing or corrupt stops every rank with an error naming the rank and the file; a folder with fewer
// shards than ranks is refused; a run stopped in its second epoch resumes to the uninterrupted run's file
// (with the self-supervised task on: its generator is in every rank's checkpoint).
TEST_CASE("mpirun -np 2 funnel train on a prepared folder: ranks on their own shards, a bad shard names its rank, resuming == uninterrupted",
          "[cli]") {
#ifndef FUNNEL_MPIEXEC
  WARN("skipped: built without MPI");
#else
  funnel::test::TempDir dir;
  funnel::train::SyntheticOptions synthetic;
  synthetic.users = 300;
  synthetic.items = 150;
  synthetic.categories = 6;
  synthetic.mean_interactions = 10;
  const std::string data = funnel::train::write_synthetic_dataset(dir.file("data"), synthetic);
  const std::string funnel = FUNNEL_CLI;
  const std::string prepared = dir.file("prepared");
  REQUIRE(run(funnel + " prepare " + data + " --out " + prepared + " --shard-rows 600", dir.file("err_prepare")) == 0);
  REQUIRE(std::filesystem::exists(prepared + "/train-00003.bin"));
  const std::string mpirun = std::string(FUNNEL_MPIEXEC) + " -np 2 -x FUNNEL_FAIL_AT_STEP ";
  const auto train = [&](const std::string& folder) {
    return mpirun + funnel + " train --data " + folder + " --epochs 3 --batch-size 32 --threads 1 --set drift_sample=0 --set shuffle_buffer=300 --set ssl=rfm --checkpoint " +
           dir.file("ck");
  };
  ::unsetenv("FUNNEL_FAIL_AT_STEP");

  REQUIRE(run(train(prepared) + " --out " + dir.file("full.funnel") + " --report " + dir.file("full.json"), dir.file("err0")) == 0);
  const nlohmann::json report = nlohmann::json::parse(read_text(dir.file("full.json")));
  CHECK(report.at("ranks") == 2);
  CHECK(report.at("dropped_rows_per_epoch").get<long>() >= 0);
  const long steps_per_epoch = report.at("steps").get<long>() / 3;
  REQUIRE(steps_per_epoch >= 4);
  for (const char* file : {"ck.ranks", "ck.rank0.e3", "ck.rank1.e3"}) std::filesystem::remove(dir.file(file));

  // Rank 1 stops in the second epoch; resuming from the first epoch's set gives the uninterrupted file.
  const long failing_step = steps_per_epoch + 2;
  ::setenv("FUNNEL_FAIL_AT_STEP", ("1:" + std::to_string(failing_step)).c_str(), 1);
  CHECK(run(train(prepared) + " --out " + dir.file("failed.funnel"), dir.file("err1")) != 0);
  ::unsetenv("FUNNEL_FAIL_AT_STEP");
  CHECK_THAT(read_text(dir.file("err1")), Contains("rank 1: injected failure after step " + std::to_string(failing_step)));
  CHECK(nlohmann::json::parse(read_text(dir.file("ck.ranks"))).at("epoch") == 1);
  REQUIRE(run(train(prepared) + " --resume " + dir.file("ck") + " --out " + dir.file("resumed.funnel"), dir.file("err2")) == 0);
  CHECK(read_text(dir.file("resumed.funnel")) == read_text(dir.file("full.funnel")));

  // Rank 1's shard train-00001.bin missing: rank 1 stops at the start, naming itself and the file.
  const std::string missing = dir.file("missing");
  std::filesystem::copy(prepared, missing);
  std::filesystem::remove(missing + "/train-00001.bin");
  CHECK(run(train(missing) + " --out " + dir.file("missing.funnel"), dir.file("err3")) != 0);
  CHECK_THAT(read_text(dir.file("err3")), Contains("rank 1: ") && Contains("train-00001.bin"));
  CHECK(!std::filesystem::exists(dir.file("missing.funnel")));

  // A flipped timestamp byte in rank 1's train-00003.bin: rank 1 finds it at the shard's end, mid-epoch, while
  // rank 0 trains on; every rank stops with rank 1's message.
  const std::string corrupt = dir.file("corrupt");
  std::filesystem::copy(prepared, corrupt);
  {
    std::fstream shard(corrupt + "/train-00003.bin", std::ios::in | std::ios::out | std::ios::binary);
    shard.seekp(32 + 16 * 5 + 9);
    shard.put(static_cast<char>(0x5A));
  }
  CHECK(run(train(corrupt) + " --out " + dir.file("corrupt.funnel"), dir.file("err4")) != 0);
  CHECK_THAT(read_text(dir.file("err4")), Contains("rank 1: ") && Contains("train-00003.bin") && Contains("corrupt"));

  // One shard for 2 ranks: refused, saying how to prepare it.
  const std::string one = dir.file("one");
  REQUIRE(run(funnel + " prepare " + data + " --out " + one, dir.file("err_one")) == 0);
  CHECK(run(train(one) + " --out " + dir.file("one.funnel"), dir.file("err5")) != 0);
  CHECK_THAT(read_text(dir.file("err5")), Contains("1 shard for 2 ranks") && Contains("--shard-rows"));
#endif
}

// `mpirun -np 2 funnel train-ranker --data <folder prepared with --ctr>`: each rank trains on its own CTR
// shards (as many instances a step on every rank, the smallest rank's count an epoch); it trains, a run
// resumed from its first epoch's checkpoint set equals the uninterrupted one, and a folder with fewer CTR
// shards than ranks is refused, saying how to prepare it.
TEST_CASE("mpirun -np 2 funnel train-ranker on a prepared --ctr folder: ranks on their own CTR shards, resuming == uninterrupted", "[cli]") {
#ifndef FUNNEL_MPIEXEC
  WARN("skipped: built without MPI");
#else
  funnel::test::TempDir dir;
  funnel::train::SyntheticOptions synthetic;
  synthetic.users = 300;
  synthetic.items = 150;
  synthetic.categories = 6;
  synthetic.mean_interactions = 10;
  const std::string data = funnel::train::write_synthetic_dataset(dir.file("data"), synthetic);
  const std::string funnel = FUNNEL_CLI;
  const std::string prepared = dir.file("prepared"), one = dir.file("one");
  const std::string ctr = " --ctr --ctr-max-history 8";
  REQUIRE(run(funnel + " prepare " + data + " --out " + prepared + ctr + " --ctr-shard-rows 900", dir.file("err_prepare")) == 0);
  REQUIRE(std::filesystem::exists(prepared + "/ctr-train-00002.bin"));
  const auto train = [&](const std::string& folder, int epochs) {
    return std::string(FUNNEL_MPIEXEC) + " -np 2 " + funnel + " train-ranker --data " + folder + " --epochs " + std::to_string(epochs) +
           " --batch-size 64 --threads 1 --shuffle-buffer 300 --set max_history=8 --set embedding_dim=4 --set hidden=[8] --checkpoint " +
           dir.file("ck" + std::to_string(epochs));
  };
  REQUIRE(run(train(prepared, 2) + " --out " + dir.file("full.funnel") + " --report " + dir.file("full.json"), dir.file("err0")) == 0);
  const nlohmann::json report = nlohmann::json::parse(read_text(dir.file("full.json")));
  CHECK(report.at("ranks") == 2);
  CHECK(report.at("streamed") == true);
  CHECK(report.at("test").at("auc").get<double>() > 0.5);
  REQUIRE(run(train(prepared, 1) + " --out " + dir.file("first.funnel"), dir.file("err1")) == 0);
  REQUIRE(run(train(prepared, 2) + " --resume " + dir.file("ck1") + " --out " + dir.file("resumed.funnel"), dir.file("err2")) == 0);
  CHECK(read_text(dir.file("resumed.funnel")) == read_text(dir.file("full.funnel")));

  // Rank 1's CTR shard ctr-train-00001.bin missing: rank 1 stops at the start, naming itself and the file.
  const std::string missing = dir.file("missing");
  std::filesystem::copy(prepared, missing);
  std::filesystem::remove(missing + "/ctr-train-00001.bin");
  CHECK(run(train(missing, 1) + " --out " + dir.file("missing.funnel"), dir.file("err4")) != 0);
  CHECK_THAT(read_text(dir.file("err4")), Contains("rank 1: ") && Contains("ctr-train-00001.bin"));
  CHECK(!std::filesystem::exists(dir.file("missing.funnel")));

  REQUIRE(run(funnel + " prepare " + data + " --out " + one + ctr, dir.file("err_one")) == 0);
  CHECK(run(train(one, 1) + " --out " + dir.file("one.funnel"), dir.file("err3")) != 0);
  CHECK_THAT(read_text(dir.file("err3")), Contains("1 CTR shard for 2 ranks") && Contains("--ctr-shard-rows"));
#endif
}
