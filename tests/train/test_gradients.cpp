// Finite-difference gradient checks for every layer and the loss.
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>

#include "train/core/layers.hpp"
#include "train/core/rng.hpp"
#include "train/retrieval/sampled_softmax.hpp"
#include "gradient_check.hpp"
#include "support.hpp"
#include "train/retrieval/two_tower.hpp"

using namespace funnel::train;
using funnel::test::expect_close;
using funnel::test::numeric_gradient;
using funnel::test::random_values;

namespace {

double weighted_sum(const std::vector<float>& values, const std::vector<float>& weights) {
  double sum = 0.0;
  for (size_t i = 0; i < values.size(); ++i) sum += static_cast<double>(values[i]) * weights[i];
  return sum;
}

}  // namespace

TEST_CASE("Linear: gradients of weight, bias and input", "[gradient]") {
  Rng rng(1);
  Parameter weight("w", {3, 5}), bias("b", {3});
  Linear linear(&weight, &bias);
  linear.init(rng);
  const size_t batch = 4;
  std::vector<float> x = random_values(batch * 5, rng), w_out = random_values(batch * 3, rng), y(batch * 3), dx(batch * 5);
  const auto loss = [&] {
    linear.forward(x.data(), batch, y.data());
    return weighted_sum(y, w_out);
  };
  linear.backward(x.data(), w_out.data(), batch, dx.data());
  for (size_t i = 0; i < weight.size(); ++i) expect_close(weight.grad[i], numeric_gradient(weight.value[i], loss), "dW");
  for (size_t i = 0; i < bias.size(); ++i) expect_close(bias.grad[i], numeric_gradient(bias.value[i], loss), "db");
  for (size_t i = 0; i < x.size(); ++i) expect_close(dx[i], numeric_gradient(x[i], loss), "dx");
}

TEST_CASE("ReLU: gradient away from the kink", "[gradient]") {
  Rng rng(2);
  std::vector<float> x = random_values(32, rng), w = random_values(32, rng), y(32), dx(32);
  for (float& v : x)
    if (std::fabs(v) < 0.05f) v = 0.5f;  // a finite difference across 0 is meaningless
  const auto loss = [&] {
    relu_forward(x.data(), x.size(), y.data());
    return weighted_sum(y, w);
  };
  loss();
  relu_backward(y.data(), w.data(), x.size(), dx.data());
  for (size_t i = 0; i < x.size(); ++i) expect_close(dx[i], numeric_gradient(x[i], loss), "dx");
}

TEST_CASE("PReLU: gradients of the input and alpha, away from the kink", "[gradient]") {
  Rng rng(21);
  const size_t batch = 5, units = 4;
  std::vector<float> x = random_values(batch * units, rng), alpha = random_values(units, rng, 0.3);
  std::vector<float> w = random_values(batch * units, rng), y(batch * units), dx(batch * units), dalpha(units, 0.0f);
  for (float& v : x)
    if (std::fabs(v) < 0.05f) v = -0.5f;
  const auto loss = [&] {
    prelu_forward(x.data(), batch, units, alpha.data(), y.data());
    return weighted_sum(y, w);
  };
  prelu_backward(x.data(), w.data(), batch, units, alpha.data(), dx.data(), dalpha.data());
  for (size_t i = 0; i < x.size(); ++i) expect_close(dx[i], numeric_gradient(x[i], loss), "dx");
  for (size_t k = 0; k < units; ++k) expect_close(dalpha[k], numeric_gradient(alpha[k], loss), "dalpha");
}

TEST_CASE("L2 normalisation: gradient", "[gradient]") {
  Rng rng(3);
  const size_t batch = 3, dim = 6;
  std::vector<float> x = random_values(batch * dim, rng), w = random_values(batch * dim, rng), y(batch * dim), dx(batch * dim);
  const auto loss = [&] {
    l2_normalize_forward(x.data(), batch, dim, y.data());
    return weighted_sum(y, w);
  };
  loss();
  l2_normalize_backward(x.data(), y.data(), w.data(), batch, dim, dx.data());
  for (size_t i = 0; i < x.size(); ++i) expect_close(dx[i], numeric_gradient(x[i], loss), "dx");
  for (size_t b = 0; b < batch; ++b) {
    double norm = 0;
    for (size_t k = 0; k < dim; ++k) norm += y[b * dim + k] * y[b * dim + k];
    CHECK(norm == Approx(1.0).epsilon(1e-6));
  }
}

TEST_CASE("EmbeddingBag: mean pooling over multi-valued rows", "[gradient]") {
  Rng rng(4);
  FeatureColumn column;
  column.def.kind = FeatureKind::kMultiCategorical;
  // Row 0: ids {1, 3}; row 1: {2}; row 2: {0, 1, 4} (id 1 appears in two rows).
  column.offsets = {0, 2, 3, 6};
  column.ids = {1, 3, 2, 0, 1, 4};
  Parameter table("table", {5, 3});
  table.value = random_values(15, rng);
  EmbeddingBag bag(&table, /*mean_pooling=*/true);
  const std::vector<uint32_t> rows = {0, 1, 2, 0};
  const size_t stride = 7, column_offset = 2;
  std::vector<float> out(rows.size() * stride, 0.0f), w = random_values(rows.size() * stride, rng);
  const auto loss = [&] {
    bag.forward(column.lists(rows), out.data(), stride, column_offset);
    double sum = 0;
    for (size_t b = 0; b < rows.size(); ++b)
      for (size_t k = 0; k < 3; ++k) sum += static_cast<double>(out[b * stride + column_offset + k]) * w[b * stride + column_offset + k];
    return sum;
  };
  loss();
  CHECK(out[column_offset] == Approx((table.value[3] + table.value[9]) / 2));
  bag.backward(column.lists(rows), w.data(), stride, column_offset);
  for (size_t i = 0; i < table.size(); ++i) expect_close(table.grad[i], numeric_gradient(table.value[i], loss), "dtable");
}

TEST_CASE("In-batch sampled softmax: gradients with logQ and accidental-hit masking", "[gradient]") {
  Rng rng(5);
  const size_t batch = 6, dim = 4;
  std::vector<float> u = random_values(batch * dim, rng, 0.5), v = random_values(batch * dim, rng, 0.5);
  const std::vector<uint32_t> items = {3, 7, 3, 1, 9, 7};  // two pairs of accidental hits
  const std::vector<float> log_q = {-1.0f, -2.5f, -1.0f, -0.3f, -4.0f, -2.5f};
  for (const bool logq : {false, true}) {
    for (const bool mask : {false, true}) {
      SampledSoftmaxOptions options;
      options.temperature = 0.5f;
      options.logq_correction = logq;
      options.mask_accidental_hits = mask;
      std::vector<float> du(u.size()), dv(v.size());
      sampled_softmax(u.data(), v.data(), items, log_q, dim, options, du.data(), dv.data());
      const auto loss = [&] { return sampled_softmax(u.data(), v.data(), items, log_q, dim, options, nullptr, nullptr); };
      const std::string what = std::string("logq ") + (logq ? "on" : "off") + ", mask " + (mask ? "on" : "off");
      for (size_t i = 0; i < u.size(); ++i) expect_close(du[i], numeric_gradient(u[i], loss), what + " du");
      for (size_t i = 0; i < v.size(); ++i) expect_close(dv[i], numeric_gradient(v[i], loss), what + " dv");
    }
  }
}

TEST_CASE("In-batch sampled softmax: accidental hits leave the loss", "[loss]") {
  const size_t dim = 2;
  const std::vector<float> u = {1, 0, 0, 1}, v = {1, 0, 1, 0};  // both rows hold item 5
  const std::vector<uint32_t> items = {5, 5};
  const std::vector<float> log_q = {0, 0};
  SampledSoftmaxOptions options;
  options.temperature = 1.0f;
  options.mask_accidental_hits = true;
  // With the duplicate column masked, each row's softmax has only its own positive: loss 0.
  CHECK(sampled_softmax(u.data(), v.data(), items, log_q, dim, options, nullptr, nullptr) == Approx(0.0).margin(1e-9));
  options.mask_accidental_hits = false;
  CHECK(sampled_softmax(u.data(), v.data(), items, log_q, dim, options, nullptr, nullptr) > 0.1);
}

TEST_CASE("Two-tower model: end-to-end gradient through both towers", "[gradient]") {
  const Dataset& data = funnel::test::small_dataset();
  TrainConfig config;
  config.embedding_dim = 4;
  config.hidden = {8};
  config.output_dim = 4;
  config.temperature = 0.5f;
  TwoTowerModel model(data, config);
  const std::vector<uint32_t> users = {0, 5, 9, 17, 33};
  const std::vector<uint32_t> items = {1, 4, 1, 8, 20};
  std::vector<float> log_q(items.size());
  for (size_t i = 0; i < items.size(); ++i) log_q[i] = -0.1f * static_cast<float>(items[i] % 7);
  for (Parameter* p : model.parameters()) p->zero_grad();
  two_tower_step(model, users, items, log_q, config, /*backward=*/true);
  const auto loss = [&] { return two_tower_step(model, users, items, log_q, config, /*backward=*/false); };
  Rng pick(6);
  for (Parameter* p : model.parameters()) {
    // Rows that the batch touches carry gradient; sample a few entries of every parameter, plus the
    // touched embedding rows' first entries.
    for (int trial = 0; trial < 6; ++trial) {
      const size_t i = pick.below(p->size());
      expect_close(p->grad[i], numeric_gradient(p->value[i], loss), p->name);
    }
  }
  // The embedding row of a batch item is certain to carry gradient.
  Parameter* item_ids = nullptr;
  for (Parameter* p : model.parameters())
    if (p->name == "item/embedding/item_id") item_ids = p;
  REQUIRE(item_ids != nullptr);
  const size_t row = data.items.features[0].ids_of(items[0])[0] * config.embedding_dim;
  CHECK(item_ids->grad[row] != 0.0f);
  expect_close(item_ids->grad[row], numeric_gradient(item_ids->value[row], loss), "batch item row");
}
