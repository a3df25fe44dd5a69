// The training engine: checkpoints that resume to the same result, a NaN loss that stops cleanly,
// determinism, the learning-rate schedule, early stopping and CBNS switching on.
#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>

#include "train/core/checkpoint.hpp"
#include "gradient_check.hpp"
#include "train/core/errors.hpp"
#include "train/core/adam.hpp"
#include "train/core/lr_schedule.hpp"
#include "train/data/split.hpp"
#include "support.hpp"
#include "train/retrieval/two_tower_training.hpp"

using namespace funnel::train;
using Catch::Matchers::Contains;

namespace {

TrainConfig quick_config() {
  TrainConfig config = funnel::test::small_two_tower_config();
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
    for (const char* logq : {"counts", "streaming", "counts+cfm"}) {
      TrainConfig config = quick_config();
      config.negatives = negatives;
      config.logq = std::string(logq) == "counts+cfm" ? "counts" : logq;
      // The self-supervised task draws its own batches and G has its own layers: both must resume too.
      if (std::string(logq) == "counts+cfm") {
        config.ssl = "cfm";
        config.ssl_share_mlp = "partial";
      }
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
  partial.header = {{"identity",
                     {{"dataset", data.name}, {"users", data.users.size()}, {"items", data.items.size()},
                      {"hidden", config.hidden}, {"output_dim", config.output_dim}, {"embedding_dim", config.embedding_dim}}}};
  save_checkpoint(dir.file("partial.ckpt"), partial);
  TrainOptions resuming;
  resuming.resume = dir.file("partial.ckpt");
  CHECK_THROWS_WITH(train_two_tower(data, leave_last_out(data), config, resuming),
                    Contains("partial.ckpt") && Contains("the checkpoint has no array"));

  // A checkpoint of a run of another shape is refused, naming the field that differs.
  Checkpoint other = partial;
  other.header["identity"]["output_dim"] = config.output_dim + 4;
  save_checkpoint(dir.file("other.ckpt"), other);
  resuming.resume = dir.file("other.ckpt");
  CHECK_THROWS_WITH(train_two_tower(data, leave_last_out(data), config, resuming),
                    Contains("other.ckpt") && Contains("another run") && Contains("'output_dim'"));
}

TEST_CASE("Learning-rate schedule: warm-up, cosine and linear decay", "[training]") {
  TrainConfig config;
  config.learning_rate = 1.0f;
  CHECK(learning_rate_at(lr_schedule_of(config), 0, 100) == 1.0f);
  config.lr_warmup_steps = 10;
  CHECK(learning_rate_at(lr_schedule_of(config), 0, 100) == Approx(0.1));
  CHECK(learning_rate_at(lr_schedule_of(config), 9, 100) == Approx(1.0));
  config.lr_schedule = "cosine";
  config.lr_min_ratio = 0.1f;
  CHECK(learning_rate_at(lr_schedule_of(config), 10, 100) == Approx(1.0));
  CHECK(learning_rate_at(lr_schedule_of(config), 99, 100) == Approx(0.1));
  CHECK(learning_rate_at(lr_schedule_of(config), 10 + 89 / 2, 100) == Approx(0.55).epsilon(0.02));
  config.lr_schedule = "linear";
  CHECK(learning_rate_at(lr_schedule_of(config), 99, 100) == Approx(0.1));
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

TEST_CASE("Deferred Adam: bit-identical to dense Adam, rows brought up to date when read", "[training][optimizer]") {
  // Rows touched at random steps, some never; a dense (not sparse) parameter alongside. Deferred Adam
  // catches up the rows each step reads, as the ranker does, and everything at the end.
  Rng rng(31);
  Parameter dense_table("table", {12, 5}), deferred_table("table", {12, 5});
  Parameter dense_mlp("mlp", {3, 4}), deferred_mlp("mlp", {3, 4});
  for (Parameter* p : {&dense_table, &deferred_table}) p->make_sparse(5);
  const std::vector<float> start = funnel::test::random_values(60, rng), start_mlp = funnel::test::random_values(12, rng);
  dense_table.value = deferred_table.value = start;
  dense_mlp.value = deferred_mlp.value = start_mlp;
  AdamOptions dense_options{0.01f, 0.9f, 0.999f, 1e-8f, false, false};
  AdamOptions deferred_options = dense_options;
  deferred_options.deferred = true;
  Adam dense({&dense_table, &dense_mlp}, dense_options);
  Adam deferred({&deferred_table, &deferred_mlp}, deferred_options);
  for (int step = 0; step < 40; ++step) {
    std::vector<std::pair<uint32_t, uint32_t>> read;
    for (uint32_t row = 0; row < 11; ++row)
      if (rng.uniform() < 0.3) read.emplace_back(0u, row);
    if (step == 0) read.emplace_back(0u, 11u);  // row 11 is read once, then only moved by its momentum
    deferred.catch_up_rows(read);
    for (size_t k = 0; k < read.size(); ++k)  // the rows a forward pass would read now equal dense Adam's
      for (size_t d = 0; d < 5; ++d) REQUIRE(deferred_table.value[read[k].second * 5 + d] == dense_table.value[read[k].second * 5 + d]);
    for (const auto& [parameter, row] : read)
      for (Parameter* p : {&dense_table, &deferred_table}) {
        for (size_t d = 0; d < 5; ++d) p->grad[row * 5 + d] = static_cast<float>(row + d) * 0.01f - 0.03f;
        p->touch(row);
      }
    for (size_t i = 0; i < 12; ++i) dense_mlp.grad[i] = deferred_mlp.grad[i] = static_cast<float>(step % 5) * 0.1f - 0.2f;
    dense.step();
    deferred.step();
  }
  const Adam::State dense_state = dense.state(), deferred_state = deferred.state();  // state() syncs
  CHECK(deferred_table.value == dense_table.value);
  CHECK(deferred_mlp.value == dense_mlp.value);
  CHECK(deferred_state.m == dense_state.m);
  CHECK(deferred_state.v == dense_state.v);
  CHECK(deferred_table.value[55] != dense_table.value[55] - 1.0f);
  CHECK(std::fabs(deferred_table.value[55] - start[55]) > 1e-3f);  // it kept moving after its one gradient
}
