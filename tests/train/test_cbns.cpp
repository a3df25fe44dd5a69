// Cross-Batch Negative Sampling, the logQ estimates and the feature-drift monitor.
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>

#include "funnel/model.hpp"

#include "train/retrieval/cbns.hpp"
#include "train/retrieval/two_tower_config.hpp"
#include "train/retrieval/two_tower_training.hpp"
#include "train/data/split.hpp"
#include "train/retrieval/feature_drift.hpp"
#include "train/retrieval/logq.hpp"
#include "train/core/rng.hpp"
#include "train/retrieval/sampled_softmax.hpp"
#include "gradient_check.hpp"
#include "support.hpp"

using namespace funnel::train;
using funnel::test::expect_close;
using funnel::test::numeric_gradient;
using funnel::test::random_values;


TEST_CASE("CBNS softmax: gradients with a memory bank, which itself gets none", "[gradient][cbns]") {
  Rng rng(21);
  const size_t batch = 5, dim = 4, bank_size = 7;
  std::vector<float> u = random_values(batch * dim, rng, 0.5), v = random_values(batch * dim, rng, 0.5);
  std::vector<float> bank_embeddings = random_values(bank_size * dim, rng, 0.5);
  const std::vector<float> bank_log_q = {-1, -2, -3, -0.5f, -4, -1.5f, -2.5f};
  const std::vector<uint32_t> bank_items = {10, 3, 11, 12, 7, 13, 3};  // items 3 and 7 are positives below
  const std::vector<uint32_t> items = {3, 7, 8, 9, 20};
  const std::vector<float> log_q = {-1.2f, -0.7f, -3.0f, -2.2f, -0.1f};
  for (const bool bank_logq : {true, false}) {
    SampledSoftmaxOptions options;
    options.temperature = 0.5f;
    const NegativeBank bank{bank_embeddings.data(), bank_log_q.data(), bank_items.data(), bank_size, bank_logq};
    std::vector<float> du(u.size()), dv(v.size());
    sampled_softmax(u.data(), v.data(), items, log_q, dim, options, du.data(), dv.data(), bank);
    const auto loss = [&] { return sampled_softmax(u.data(), v.data(), items, log_q, dim, options, nullptr, nullptr, bank); };
    const std::string what = bank_logq ? "bank logq on" : "bank logq off";
    for (size_t i = 0; i < u.size(); ++i) expect_close(du[i], numeric_gradient(u[i], loss), what + " du");
    for (size_t i = 0; i < v.size(); ++i) expect_close(dv[i], numeric_gradient(v[i], loss), what + " dv");
    // The bank is a constant of the loss: moving it changes the loss, but no gradient is asked for or given.
    const double before = loss();
    bank_embeddings[0] += 0.5f;
    CHECK(loss() != before);
    bank_embeddings[0] -= 0.5f;
  }
}

TEST_CASE("CBNS softmax: the balanced item gradient is the in-batch softmax's", "[gradient][cbns]") {
  Rng rng(22);
  const size_t batch = 6, dim = 3, bank_size = 9;
  const std::vector<float> u = random_values(batch * dim, rng, 0.7), v = random_values(batch * dim, rng, 0.7);
  const std::vector<float> bank_embeddings = random_values(bank_size * dim, rng, 0.7);
  const std::vector<float> bank_log_q = random_values(bank_size, rng, 1.0);
  const std::vector<uint32_t> bank_items = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<uint32_t> items = {1, 11, 12, 13, 14, 11};
  const std::vector<float> log_q = random_values(batch, rng, 1.0);
  SampledSoftmaxOptions options;
  options.temperature = 0.3f;
  std::vector<float> du_full(u.size()), dv_full(v.size()), du_balanced(u.size()), dv_balanced(v.size()), dv_in_batch(v.size());
  NegativeBank bank{bank_embeddings.data(), bank_log_q.data(), bank_items.data(), bank_size, true, false};
  const double loss = sampled_softmax(u.data(), v.data(), items, log_q, dim, options, du_full.data(), dv_full.data(), bank);
  bank.balanced_item_gradient = true;
  CHECK(sampled_softmax(u.data(), v.data(), items, log_q, dim, options, du_balanced.data(), dv_balanced.data(), bank) == loss);
  sampled_softmax(u.data(), v.data(), items, log_q, dim, options, nullptr, dv_in_batch.data());
  for (size_t i = 0; i < u.size(); ++i) CHECK(du_balanced[i] == Approx(du_full[i]).margin(1e-6));  // the user side is unchanged
  for (size_t i = 0; i < v.size(); ++i) CHECK(dv_balanced[i] == Approx(dv_in_batch[i]).margin(1e-6));
  double full = 0, in_batch = 0;
  for (size_t i = 0; i < v.size(); ++i) full += std::fabs(dv_full[i] - dv_in_batch[i]), in_batch += std::fabs(dv_in_batch[i]);
  CHECK(full > 1e-3 * in_batch);  // and the paper's item gradient is a different one
}

TEST_CASE("CBNS softmax: bank entries holding the row's positive are masked", "[cbns]") {
  // One row, positive item 4; the bank holds item 4 (masked) and item 5 (a real negative).
  const std::vector<float> u = {1, 0}, v = {1, 0};
  const std::vector<uint32_t> items = {4};
  const std::vector<float> log_q = {0};
  const std::vector<float> bank_embeddings = {1, 0, 0, 1};
  const std::vector<float> bank_log_q = {0, 0};
  SampledSoftmaxOptions options;
  options.temperature = 1.0f;
  const std::vector<uint32_t> hit_and_miss = {4, 5};
  const NegativeBank bank{bank_embeddings.data(), bank_log_q.data(), hit_and_miss.data(), 2, true};
  // Softmax over {positive: 1, item 5: 0}: loss = log(e + 1) - 1.
  CHECK(sampled_softmax(u.data(), v.data(), items, log_q, 2, options, nullptr, nullptr, bank) ==
        Approx(std::log(std::exp(1.0) + 1.0) - 1.0));
  options.mask_accidental_hits = false;
  CHECK(sampled_softmax(u.data(), v.data(), items, log_q, 2, options, nullptr, nullptr, bank) ==
        Approx(std::log(2 * std::exp(1.0) + 1.0) - 1.0));
}

TEST_CASE("Memory bank: FIFO, exactly M entries", "[cbns]") {
  MemoryBank bank(5, 2);
  CHECK(bank.size() == 0);
  const auto push = [&bank](std::vector<uint32_t> ids) {
    std::vector<float> embeddings, log_q;
    for (uint32_t id : ids) {
      embeddings.push_back(static_cast<float>(id));
      embeddings.push_back(-static_cast<float>(id));
      log_q.push_back(-static_cast<float>(id));
    }
    bank.enqueue(embeddings.data(), log_q.data(), ids.data(), ids.size());
  };
  push({1, 2, 3});
  CHECK(bank.size() == 3);
  CHECK(bank.item_by_age(0) == 1);
  push({4, 5, 6});  // 1 is dequeued
  CHECK(bank.size() == 5);
  CHECK(bank.item_by_age(0) == 2);
  CHECK(bank.item_by_age(4) == 6);
  push({7, 8, 9, 10, 11, 12, 13});  // larger than the bank: its last 5 rows stay
  CHECK(bank.size() == 5);
  for (size_t age = 0; age < 5; ++age) CHECK(bank.item_by_age(age) == 9 + age);
  const NegativeBank view = bank.negatives(true, true);
  REQUIRE(view.count == 5);
  for (size_t i = 0; i < view.count; ++i) {
    CHECK(view.embeddings[2 * i] == static_cast<float>(view.items[i]));  // rows stay whole
    CHECK(view.log_q[i] == -static_cast<float>(view.items[i]));          // with their log q from enqueue time
  }
  MemoryBank copy(5, 2);
  copy.restore(bank.state());
  for (size_t age = 0; age < 5; ++age) CHECK(copy.item_by_age(age) == bank.item_by_age(age));
  CHECK_THROWS(MemoryBank(4, 2).restore(bank.state()));
}

TEST_CASE("logQ: counts, and the streaming estimate converges to the sampling frequency", "[logq]") {
  const auto exact = log_q_from_counts({30, 10, 0}, 40);
  CHECK(exact[0] == Approx(std::log(0.75)));
  CHECK(exact[1] == Approx(std::log(0.25)));
  CHECK(std::isfinite(exact[2]));

  // Items 0..3 with probabilities 0.4, 0.3, 0.2, 0.1, batches of 20 for 3,000 steps.
  const std::vector<double> p = {0.4, 0.3, 0.2, 0.1};
  StreamingFrequency streaming(1 << 12, 0.01f);
  Rng rng(5);
  std::vector<uint32_t> batch(20);
  std::vector<float> log_q;
  std::vector<double> last(4, 0.0);
  for (long step = 0; step < 3000; ++step) {
    for (uint32_t& item : batch) {
      const double r = rng.uniform();
      item = r < 0.4 ? 0 : r < 0.7 ? 1 : r < 0.9 ? 2 : 3;
    }
    streaming.update(step, batch, &log_q);
    for (size_t i = 0; i < batch.size(); ++i) last[batch[i]] = std::exp(log_q[i]);
  }
  // Per-step arrivals are Poisson-like, so the estimate is close, not exact: within 20 % here.
  for (size_t i = 0; i < p.size(); ++i) {
    INFO("item " << i << ": estimate " << last[i] << ", truth " << p[i]);
    CHECK(last[i] == Approx(p[i]).epsilon(0.2));
  }
}

TEST_CASE("Feature drift: zero for a frozen tower, growing with the step gap for a moving one", "[drift]") {
  DriftMonitor monitor({0, 1, 2}, {1, 5, 10}, 20);
  double position = 0;
  const DriftMonitor::Embed embed = [&position](std::span<const uint32_t> rows, float* out) {
    for (size_t i = 0; i < rows.size(); ++i) {
      out[2 * i] = static_cast<float>(position);
      out[2 * i + 1] = 0.0f;
    }
  };
  std::vector<DriftRecord> records;
  for (long step = 1; step <= 59; ++step) {
    position += 0.01;  // every item moves 0.01 per step
    for (const DriftRecord& r : monitor.after_step(step, 2, embed)) records.push_back(r);
  }
  REQUIRE(records.size() == 6);  // probes based at steps 20 and 40, each measured 1, 5 and 10 steps later
  for (const DriftRecord& r : records) {
    CHECK(r.mean == Approx(0.01 * r.delta).epsilon(1e-3));
    CHECK(r.sum == Approx(3 * 0.01 * r.delta).epsilon(1e-3));
  }
  DriftMonitor frozen({0, 1}, {1}, 3);
  position = 1.0;
  for (long step = 1; step <= 10; ++step)
    for (const DriftRecord& r : frozen.after_step(step, 2, embed)) CHECK(r.sum == 0.0);
}

TEST_CASE("CBNS: negatives=cbns trains the balanced variant by default; the paper's form is one setting away", "[cbns][training]") {
  // The paper's form collapses on every dataset of docs/studies/retrieval.md; the balanced item gradient trains.
  CHECK(TrainConfig{}.cbns_balanced_item_gradient);
  CHECK(config_from_json({{"negatives", "cbns"}}, "run.json").cbns_balanced_item_gradient);
  CHECK_FALSE(config_from_json({{"negatives", "cbns"}, {"cbns_balanced_item_gradient", false}}, "run.json").cbns_balanced_item_gradient);
  CHECK(config_to_json(TrainConfig{}).at("cbns_balanced_item_gradient") == true);

  // The setting reaches the loss: the default run is the balanced run, and the paper's form is another model.
  const Dataset& data = funnel::test::small_dataset();
  const Split split = leave_last_out(data);
  TrainConfig config = funnel::test::small_two_tower_config();
  config.epochs = 2;
  config.negatives = "cbns";
  config.memory_size = 100;
  config.cbns_warmup_steps = 2;
  config.drift_sample = 0;
  const std::vector<uint8_t> by_default = train_two_tower(data, split, config).model_file;
  config.cbns_balanced_item_gradient = true;
  CHECK(train_two_tower(data, split, config).model_file == by_default);
  // The files' metadata differ with the config; the towers must differ too.
  config.cbns_balanced_item_gradient = false;
  const std::vector<uint8_t> paper = train_two_tower(data, split, config).model_file;
  std::unique_ptr<funnel::Model> balanced_model, paper_model;
  REQUIRE(funnel::Model::load_bytes(by_default.data(), by_default.size(), &balanced_model).is_ok());
  REQUIRE(funnel::Model::load_bytes(paper.data(), paper.size(), &paper_model).is_ok());
  std::vector<float> balanced_user, paper_user;
  REQUIRE(balanced_model->user_embedding(data.users.raw[0], &balanced_user).is_ok());
  REQUIRE(paper_model->user_embedding(data.users.raw[0], &paper_user).is_ok());
  CHECK(balanced_user != paper_user);
}
