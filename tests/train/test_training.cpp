// The training engine: checkpoints that resume to the same result, a NaN loss that stops cleanly,
// determinism, the learning-rate schedule, early stopping and CBNS switching on.
#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>

#include "checkpoint.hpp"
#include "errors.hpp"
#include "adam.hpp"
#include "lr_schedule.hpp"
#include "split.hpp"
#include "support.hpp"
#include "two_tower.hpp"

using namespace funnel::train;
using Catch::Matchers::Contains;

namespace {

TrainConfig quick_config() {
  TrainConfig config;
  config.embedding_dim = 8;
  config.hidden = {16};
  config.output_dim = 8;
  config.batch_size = 64;
  config.epochs = 3;
  config.threads = 1;
  config.drift_interval = 11;
  config.drift_deltas = {1, 5, 10};
  return config;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct SimulatedCrash {};

}  // namespace

TEST_CASE("Training: the same seed on one thread gives a byte-identical model file", "[training][determinism]") {
  const Dataset& data = funnel::test::small_dataset();
  const Split split = leave_last_out(data);
  TrainConfig config = quick_config();
  config.epochs = 2;
  const auto first = train_two_tower(data, split, config).model_file;
  CHECK(train_two_tower(data, split, config).model_file == first);
  config.seed = 1;
  CHECK(train_two_tower(data, split, config).model_file != first);
}

TEST_CASE("Training: resuming from a checkpoint reproduces the uninterrupted run", "[training][checkpoint]") {
  const Dataset& data = funnel::test::small_dataset();
  const Split split = leave_last_out(data);
  for (const char* negatives : {"in_batch", "cbns"}) {
    for (const char* logq : {"counts", "streaming"}) {
      TrainConfig config = quick_config();
      config.negatives = negatives;
      config.logq = logq;
      config.memory_size = 100;
      config.cbns_warmup_steps = 4;
      config.lr_schedule = "cosine";
      INFO(negatives << " / " << logq);
      const std::vector<uint8_t> uninterrupted = train_two_tower(data, split, config).model_file;

      funnel::test::TempDir dir;
      TrainOptions crashing;
      crashing.checkpoint = dir.file("run.ckpt");
      crashing.observer.on_epoch = [](const EpochRecord& r) {
        if (r.epoch == 2) throw SimulatedCrash{};
      };
      CHECK_THROWS_AS(train_two_tower(data, split, config, crashing), SimulatedCrash);
      TrainOptions resuming;
      resuming.resume = crashing.checkpoint;
      CHECK(train_two_tower(data, split, config, resuming).model_file == uninterrupted);
    }
  }
}

TEST_CASE("Training: a NaN loss stops with a clear message and leaves the last checkpoint intact", "[training][checkpoint]") {
  const Dataset& data = funnel::test::small_dataset();
  const Split split = leave_last_out(data);
  funnel::test::TempDir dir;
  TrainConfig config = quick_config();
  config.epochs = 1;
  TrainOptions first;
  first.checkpoint = dir.file("run.ckpt");
  train_two_tower(data, split, config, first);
  const std::vector<uint8_t> good = read_bytes(first.checkpoint);
  REQUIRE(!good.empty());

  config.epochs = 3;
  config.learning_rate = 1e30f;  // the parameters overflow within a few steps
  TrainOptions blowing_up;
  blowing_up.resume = first.checkpoint;
  blowing_up.checkpoint = first.checkpoint;
  CHECK_THROWS_WITH(train_two_tower(data, split, config, blowing_up),
                    Contains("loss became") && Contains("epoch 2") && Contains("last checkpoint"));
  CHECK(read_bytes(first.checkpoint) == good);
  CHECK_NOTHROW(load_checkpoint(first.checkpoint));
}

TEST_CASE("Checkpoint: damaged files are refused with the file's name", "[checkpoint]") {
  funnel::test::TempDir dir;
  Checkpoint c;
  c.header = {{"x", 1}};
  c.floats["a"] = {1, 2, 3};
  c.integers["b"] = {7};
  save_checkpoint(dir.file("ok.ckpt"), c);
  const Checkpoint back = load_checkpoint(dir.file("ok.ckpt"));
  CHECK(back.float_array("a") == std::vector<float>{1, 2, 3});
  CHECK(back.integer_array("b") == std::vector<uint32_t>{7});
  auto bytes = read_bytes(dir.file("ok.ckpt"));
  bytes.resize(bytes.size() - 3);
  const std::string truncated = dir.write("cut.ckpt", std::string(bytes.begin(), bytes.end()));
  CHECK_THROWS_WITH(load_checkpoint(truncated), Contains("cut.ckpt") && Contains("not a usable checkpoint"));
  const std::string foreign = dir.write("foreign.ckpt", "definitely not a checkpoint file");
  CHECK_THROWS_WITH(load_checkpoint(foreign), Contains("magic"));

  // A well-formed file that lacks what a run needs is refused by name, not with a bare library error.
  const Dataset& data = funnel::test::small_dataset();
  const TrainConfig config = quick_config();
  Checkpoint partial;
  partial.header = {{"dataset", data.name}, {"users", data.users.size()}, {"items", data.items.size()},
                    {"hidden", config.hidden}, {"output_dim", config.output_dim}, {"embedding_dim", config.embedding_dim}};
  save_checkpoint(dir.file("partial.ckpt"), partial);
  TrainOptions resuming;
  resuming.resume = dir.file("partial.ckpt");
  CHECK_THROWS_WITH(train_two_tower(data, leave_last_out(data), config, resuming),
                    Contains("partial.ckpt") && Contains("the checkpoint has no array"));
}

TEST_CASE("Learning-rate schedule: warm-up, cosine and linear decay", "[training]") {
  TrainConfig config;
  config.learning_rate = 1.0f;
  CHECK(learning_rate_at(config, 0, 100) == 1.0f);
  config.lr_warmup_steps = 10;
  CHECK(learning_rate_at(config, 0, 100) == Approx(0.1));
  CHECK(learning_rate_at(config, 9, 100) == Approx(1.0));
  config.lr_schedule = "cosine";
  config.lr_min_ratio = 0.1f;
  CHECK(learning_rate_at(config, 10, 100) == Approx(1.0));
  CHECK(learning_rate_at(config, 99, 100) == Approx(0.1));
  CHECK(learning_rate_at(config, 10 + 89 / 2, 100) == Approx(0.55).epsilon(0.02));
  config.lr_schedule = "linear";
  CHECK(learning_rate_at(config, 99, 100) == Approx(0.1));
}

TEST_CASE("Training: early stopping and the CBNS switch are reported", "[training][cbns]") {
  const Dataset& data = funnel::test::small_dataset();
  const Split split = leave_last_out(data);
  TrainConfig config = quick_config();
  config.epochs = 30;
  config.early_stopping_patience = 1;
  config.learning_rate = 0.05f;  // overfits this small set quickly
  TrainOptions options;
  std::vector<std::string> notes;
  options.observer.on_note = [&notes](const std::string& note) { notes.push_back(note); };
  const TrainResult stopped = train_two_tower(data, split, config, options);
  CHECK(stopped.stopped_early);
  CHECK(stopped.history.size() < 30);
  CHECK(stopped.history.size() == stopped.best_epoch + 1);

  config = quick_config();
  config.negatives = "cbns";
  config.memory_size = 64;
  config.cbns_auto_warmup = true;
  config.drift_threshold = 10.0f;  // any drift is below it: CBNS starts at the first probe's last gap
  notes.clear();
  const TrainResult auto_warm = train_two_tower(data, split, config, options);
  CHECK(auto_warm.cbns_start_step == config.drift_interval + config.drift_deltas.back());
  REQUIRE(!notes.empty());
  CHECK_THAT(notes.front(), Contains("CBNS on") && Contains("drift"));
  CHECK(auto_warm.history.back().cbns_active);
}

TEST_CASE("Lazy Adam: touched rows move as with dense Adam, untouched rows stay", "[training][optimizer]") {
  Parameter dense("dense", {4, 2}), lazy("lazy", {4, 2});
  for (Parameter* p : {&dense, &lazy}) {
    p->make_sparse(2);
    for (size_t i = 0; i < p->size(); ++i) p->value[i] = 0.1f * static_cast<float>(i);
  }
  Adam dense_adam({&dense}, {0.01f, 0.9f, 0.999f, 1e-8f, false});
  Adam lazy_adam({&lazy}, {0.01f, 0.9f, 0.999f, 1e-8f, true});
  for (int step = 0; step < 3; ++step) {
    for (Parameter* p : {&dense, &lazy}) {
      p->grad[2] = 0.5f;  // row 1 only
      p->grad[3] = -0.25f;
      p->touch(1);
    }
    dense_adam.step();
    lazy_adam.step();
  }
  CHECK(lazy.value[2] == dense.value[2]);
  CHECK(lazy.value[3] == dense.value[3]);
  for (size_t i : {0u, 1u, 4u, 5u, 6u, 7u}) CHECK(lazy.value[i] == Approx(0.1 * i));  // untouched rows
  CHECK(lazy.touched.empty());
  CHECK(dense.grad[2] == 0.0f);
}
