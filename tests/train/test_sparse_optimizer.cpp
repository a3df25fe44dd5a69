// The sparse optimisers for embedding tables (train/core/sparse_adam.cpp, rowwise_adagrad.cpp): their update
// equations against a reference computed here in double, a step that reads and writes the touched rows
// only, and checkpoints that resume to the uninterrupted run, alone and inside both trainers.
#include <catch2/catch.hpp>
#include <cmath>

#include "support.hpp"
#include "train/core/momentum_tail_adam.hpp"
#include "train/core/rowwise_adagrad.hpp"
#include "train/core/sparse_adam.hpp"
#include "train/data/ctr_data.hpp"
#include "train/data/split.hpp"
#include "train/ranking/ranker_training.hpp"
#include "train/retrieval/two_tower_training.hpp"

using namespace funnel::train;

namespace {

constexpr size_t kRows = 6, kDim = 3;

Parameter make_table(const std::string& name = "table") {
  Parameter p(name, {kRows, kDim});
  p.make_sparse(kDim);
  for (size_t i = 0; i < p.size(); ++i) p.value[i] = 0.1f * static_cast<float>(i) - 0.5f;
  return p;
}

// The gradient of row `row` at step `step`, element `d`: varied in sign and size.
float gradient(size_t step, size_t row, size_t d) { return std::sin(static_cast<float>(7 * step + 3 * row + d)) * (0.5f + 0.1f * static_cast<float>(d)); }

// Which rows step `step` touches: a pattern where rows start late, skip steps, and row 5 is never touched.
std::vector<uint32_t> rows_of_step(size_t step) {
  std::vector<uint32_t> rows;
  for (uint32_t r = 0; r < 5; ++r)
    if ((step + r) % (r + 1) == 0 && step >= r) rows.push_back(r);
  return rows;
}

void accumulate(Parameter& p, size_t step) {
  for (uint32_t r : rows_of_step(step)) {
    p.touch(r);
    for (size_t d = 0; d < kDim; ++d) p.grad[r * kDim + d] += gradient(step, r, d);
  }
}

}  // namespace

TEST_CASE("Sparse Adam: each row follows Adam's equations with its own step count", "[training][optimizer][sparse]") {
  Parameter table = make_table();
  SparseAdam adam({&table}, {0.01f, 0.9f, 0.999f, 1e-8f});
  // Reference in double: m, v, step count per row; bias correction at the row's own count (Algorithm 1).
  std::vector<double> value(table.value.begin(), table.value.end()), m(table.size(), 0.0), v(table.size(), 0.0);
  std::vector<int> count(kRows, 0);
  for (size_t step = 0; step < 12; ++step) {
    accumulate(table, step);
    adam.step();
    for (uint32_t r : rows_of_step(step)) {
      const int k = ++count[r];
      for (size_t d = 0; d < kDim; ++d) {
        const size_t e = r * kDim + d;
        const double g = gradient(step, r, d);
        m[e] = 0.9 * m[e] + 0.1 * g;
        v[e] = 0.999 * v[e] + 0.001 * g * g;
        const double m_hat = m[e] / (1 - std::pow(0.9, k)), v_hat = v[e] / (1 - std::pow(0.999, k));
        value[e] -= 0.01 * m_hat / (std::sqrt(v_hat) + 1e-8);
      }
    }
    for (size_t e = 0; e < table.size(); ++e) {
      INFO("step " << step << ", element " << e);
      // float against double: 1 - 0.999f is 0.00100005 in float, a relative difference of 5e-5 in v.
      REQUIRE(table.value[e] == Approx(value[e]).margin(1e-6));
      REQUIRE(adam.m(0)[e] == Approx(m[e]).epsilon(1e-4).margin(1e-8));
      REQUIRE(adam.v(0)[e] == Approx(v[e]).epsilon(1e-4).margin(1e-10));
      REQUIRE(table.grad[e] == 0.0f);
    }
    for (size_t r = 0; r < kRows; ++r) REQUIRE(adam.row_steps(0)[r] == static_cast<uint32_t>(count[r]));
    REQUIRE(table.touched.empty());
  }
  // Row 5 was never touched: its values are the initial ones, bit for bit.
  for (size_t d = 0; d < kDim; ++d) CHECK(table.value[5 * kDim + d] == make_table().value[5 * kDim + d]);
}

TEST_CASE("Sparse Adam: a table whose every row is touched every step is dense Adam, bit for bit", "[training][optimizer][sparse]") {
  Parameter sparse = make_table(), dense = make_table();
  SparseAdam sparse_adam({&sparse}, {0.01f, 0.9f, 0.999f, 1e-8f});
  Adam dense_adam({&dense}, {0.01f, 0.9f, 0.999f, 1e-8f, false, false});
  for (size_t step = 0; step < 30; ++step) {
    for (uint32_t r = 0; r < kRows; ++r) {
      sparse.touch(r);
      dense.touch(r);
      for (size_t d = 0; d < kDim; ++d) sparse.grad[r * kDim + d] = dense.grad[r * kDim + d] = gradient(step, r, d);
    }
    sparse_adam.step();
    dense_adam.step();
    REQUIRE(sparse.value == dense.value);
  }
}

TEST_CASE("Momentum-tail Adam: follows dense Adam's path where lazy Adam drops the momentum's tail", "[training][optimizer][sparse]") {
  // Past the bias corrections' early steps (3,000 steps without a touch, which move nothing), rows touched
  // now and then; then 400 steps without gradients, over which dense Adam's momentum runs out. The rows'
  // total displacement must then be dense Adam's, within the approximations named in momentum_tail_adam.hpp.
  Parameter dense = make_table(), tail = make_table(), lazy = make_table();
  const SparseOptimizerOptions options{0.01f, 0.9f, 0.999f, 1e-8f};
  Adam dense_adam({&dense}, {0.01f, 0.9f, 0.999f, 1e-8f, false, false});
  Adam lazy_adam({&lazy}, {0.01f, 0.9f, 0.999f, 1e-8f, true, false});
  MomentumTailAdam tail_adam({&tail}, options);
  const auto step_all = [&] {
    dense_adam.step();
    tail_adam.step();
    lazy_adam.step();
  };
  for (int s = 0; s < 3000; ++s) step_all();
  for (size_t step = 0; step < 60; ++step) {
    for (Parameter* p : {&dense, &tail, &lazy}) accumulate(*p, step);
    step_all();
  }
  for (int s = 0; s < 400; ++s) step_all();
  const Parameter start = make_table();
  double tail_error = 0.0, lazy_error = 0.0, moved = 0.0;
  for (size_t e = 0; e < start.size(); ++e) {
    const double d = dense.value[e] - start.value[e];
    moved += std::abs(d);
    tail_error += std::abs(tail.value[e] - start.value[e] - d);
    lazy_error += std::abs(lazy.value[e] - start.value[e] - d);
  }
  INFO("dense Adam moved " << moved << " in all; momentum-tail Adam is off by " << tail_error << ", lazy Adam by " << lazy_error);
  CHECK(tail_error < 1e-3 * moved);  // 8e-5 here
  CHECK(lazy_error > 0.3 * moved);
  for (size_t d = 0; d < kDim; ++d) CHECK(tail.value[5 * kDim + d] == start.value[5 * kDim + d]);
}

TEST_CASE("Row-wise Adagrad: one accumulator per row, FBGEMM's update", "[training][optimizer][sparse]") {
  Parameter table = make_table();
  RowwiseAdagrad adagrad({&table}, {0.05f, 0.9f, 0.999f, 1e-8f});
  std::vector<double> value(table.value.begin(), table.value.end()), sum(kRows, 0.0);
  for (size_t step = 0; step < 12; ++step) {
    accumulate(table, step);
    adagrad.step();
    for (uint32_t r : rows_of_step(step)) {
      double squares = 0.0;
      for (size_t d = 0; d < kDim; ++d) squares += static_cast<double>(gradient(step, r, d)) * gradient(step, r, d);
      sum[r] += squares / kDim;
      for (size_t d = 0; d < kDim; ++d) value[r * kDim + d] -= 0.05 * gradient(step, r, d) / (std::sqrt(sum[r]) + 1e-8);
    }
    for (size_t e = 0; e < table.size(); ++e) REQUIRE(table.value[e] == Approx(value[e]).margin(1e-6));
    for (size_t r = 0; r < kRows; ++r) REQUIRE(adagrad.accumulator(0)[r] == Approx(sum[r]).margin(1e-7));
  }
  for (size_t d = 0; d < kDim; ++d) CHECK(table.value[5 * kDim + d] == make_table().value[5 * kDim + d]);
}

TEST_CASE("Sparse optimisers: a step reads and writes the touched rows only", "[training][optimizer][sparse]") {
  // Untouched rows carry a gradient here (as no model would leave them): a step that swept the table
  // would apply it or clear it. Neither happens, so the step's work is the touched rows, not the table.
  for (const char* name : {"sparse_adam", "momentum_tail_adam", "rowwise_adagrad"}) {
    INFO(name);
    Parameter table("big", {100000, kDim});
    table.make_sparse(kDim);
    std::fill(table.grad.begin(), table.grad.end(), 1.0f);
    const std::vector<float> before = table.value;
    auto optimizer = make_sparse_optimizer(name, {&table}, {0.01f, 0.9f, 0.999f, 1e-8f});
    for (uint32_t r : {7u, 99999u, 4242u}) table.touch(r);
    optimizer->step();
    size_t changed_rows = 0, cleared = 0;
    for (size_t r = 0; r < 100000; ++r) {
      bool changed = false;
      for (size_t d = 0; d < kDim; ++d) {
        changed |= table.value[r * kDim + d] != before[r * kDim + d];
        cleared += table.grad[r * kDim + d] == 0.0f;
      }
      changed_rows += changed;
    }
    CHECK(changed_rows == 3);
    CHECK(cleared == 3 * kDim);
    CHECK(table.value[7 * kDim] != before[7 * kDim]);
    CHECK(table.value[99999 * kDim + 2] != before[99999 * kDim + 2]);
  }
}

TEST_CASE("Sparse optimisers: tables below sparse_optimizer_min_rows and dense layers keep Adam", "[training][optimizer][sparse]") {
  Parameter big("big", {50, 2}), small("small", {10, 2}), layer("layer", {4, 4});
  big.make_sparse(2);
  small.make_sparse(2);
  const TrainerOptimizer split({&big, &small, &layer}, AdamOptions{}, "sparse_adam", 50, 0.0f);
  CHECK(split.sparse_tables() == std::vector<Parameter*>{&big});
  CHECK(split.adam_parameters() == std::vector<Parameter*>{&small, &layer});
  const TrainerOptimizer none({&big, &small, &layer}, AdamOptions{}, "none", 0, 0.0f);
  CHECK(none.sparse_tables().empty());
  CHECK_THROWS_WITH(make_sparse_optimizer("sparse_adam", {&layer}, {}), Catch::Contains("'layer' is not an embedding table"));
}

TEST_CASE("Sparse optimisers: a checkpoint resumes to the uninterrupted run, bit for bit", "[training][optimizer][sparse][checkpoint]") {
  for (const char* name : {"sparse_adam", "momentum_tail_adam", "rowwise_adagrad"}) {
    INFO(name);
    const auto run = [name](size_t steps, const std::string& save, const std::string& resume) {
      Parameter table = make_table();
      auto optimizer = make_sparse_optimizer(name, {&table}, {0.01f, 0.9f, 0.999f, 1e-8f});
      TrainingState state(nlohmann::json{{"test", 1}});
      state.parameters({&table});
      optimizer->register_state(state);
      size_t first = 0;
      if (!resume.empty()) {
        state.restore(resume);
        first = 7;
      }
      for (size_t step = first; step < steps; ++step) {
        accumulate(table, step);
        optimizer->step();
      }
      if (!save.empty()) state.save(save);
      return table.value;
    };
    funnel::test::TempDir dir;
    const std::vector<float> uninterrupted = run(15, "", "");
    run(7, dir.file("opt.ckpt"), "");
    CHECK(run(15, "", dir.file("opt.ckpt")) == uninterrupted);
  }
}

namespace {
struct Crash {};
}  // namespace

TEST_CASE("Sparse optimisers: both trainers resume to the uninterrupted run", "[training][optimizer][sparse][checkpoint]") {
  const Dataset& data = funnel::test::small_dataset();
  const Split split = leave_last_out(data);
  const CtrDataset& ctr = funnel::test::small_ctr();
  for (const char* name : {"sparse_adam", "momentum_tail_adam", "rowwise_adagrad"}) {
    INFO(name);
    TrainConfig config = funnel::test::small_two_tower_config();
    config.sparse_optimizer = name;
    config.sparse_optimizer_min_rows = 100;  // the user and item id tables; the small feature tables keep Adam
    const std::vector<uint8_t> uninterrupted = train_two_tower(data, split, config).model_file;
    config.sparse_optimizer = "none";
    CHECK(train_two_tower(data, split, config).model_file != uninterrupted);  // the tables did take the sparse optimiser
    config.sparse_optimizer = name;
    funnel::test::TempDir dir;
    TrainOptions crashing;
    crashing.checkpoint = dir.file("run.ckpt");
    crashing.observer.on_epoch = [](const EpochRecord& r) {
      if (r.epoch == 2) throw Crash{};
    };
    CHECK_THROWS_AS(train_two_tower(data, split, config, crashing), Crash);
    TrainOptions resuming;
    resuming.resume = crashing.checkpoint;
    CHECK(train_two_tower(data, split, config, resuming).model_file == uninterrupted);

    RankerConfig ranker = funnel::test::small_ranker_config();
    ranker.epochs = 3;
    ranker.batch_size = 32;
    ranker.threads = 1;
    ranker.sparse_optimizer = name;
    ranker.sparse_optimizer_min_rows = 100;
    const RankerResult whole = train_ranker(ctr, ranker);
    RankerCheckpoints ranker_crashing;
    ranker_crashing.checkpoint = dir.file("ranker.ckpt");
    RankerObserver observer;
    observer.on_epoch = [](const RankerEpoch& e) {
      if (e.epoch == 2) throw Crash{};
    };
    CHECK_THROWS_AS(train_ranker(ctr, ranker, observer, {}, nullptr, ranker_crashing), Crash);
    RankerCheckpoints ranker_resuming;
    ranker_resuming.resume = ranker_crashing.checkpoint;
    CHECK(train_ranker(ctr, ranker, {}, {}, nullptr, ranker_resuming).model_file == whole.model_file);
  }
}
