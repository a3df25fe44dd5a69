// CAN's co-action unit: gradient checks over orders, biases, layer stacks and order independence; the
// FM special case; the trainer's unit against the SDK's.
#include <catch2/catch.hpp>
#include <cmath>

#include "train/ranking/coaction.hpp"
#include "funnel/ranker.hpp"
#include "gradient_check.hpp"
#include "train/core/rng.hpp"
#include "support.hpp"

using namespace funnel::train;
using funnel::CoActionView;
using funnel::test::expect_close;
using funnel::test::numeric_gradient;
using funnel::test::random_values;

namespace {

CoActionView shape_of(uint32_t feed_dim, std::vector<uint32_t> layers, bool bias, uint32_t orders, bool order_independent) {
  CoActionView shape;
  shape.feed_dim = feed_dim;
  shape.layer_sizes = std::move(layers);
  shape.bias = bias;
  shape.orders = orders;
  shape.order_independent = order_independent;
  return shape;
}

}  // namespace

TEST_CASE("Co-action unit: gradients of the induction row and the feed", "[gradient][coaction]") {
  struct Case {
    const char* name;
    CoActionView shape;
    size_t rows;
  };
  const std::vector<Case> cases = {
      {"the paper's default [4->3->2], 3 orders, no bias", shape_of(4, {3, 2}, false, 3, false), 5},
      {"with biases", shape_of(4, {3, 2}, true, 3, false), 4},
      {"order independence", shape_of(4, {3, 2}, true, 3, true), 3},
      {"one layer, one order", shape_of(5, {2}, false, 1, false), 6},
      {"three layers, two independent orders", shape_of(3, {4, 3, 2}, true, 2, true), 4},
      {"a single feed row (a user feature)", shape_of(4, {3, 2}, false, 3, false), 1},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      Rng rng(11);
      CoActionUnit unit(c.shape);
      std::vector<float> induction = random_values(c.shape.induction_width(), rng, 0.5);
      std::vector<float> feed = random_values(c.rows * c.shape.feed_dim, rng, 0.7);
      std::vector<float> weights = random_values(c.shape.output_dim(), rng);
      std::vector<float> cache(unit.cache_size(c.rows)), out(c.shape.output_dim()), scratch(unit.scratch_size(c.rows));
      const auto loss = [&] {
        unit.forward(induction.data(), feed.data(), c.rows, cache.data(), out.data());
        double sum = 0.0;
        for (size_t i = 0; i < out.size(); ++i) sum += static_cast<double>(out[i]) * weights[i];
        return sum;
      };
      loss();
      std::vector<float> dinduction(induction.size(), 0.0f), dfeed(feed.size(), 0.0f);
      unit.backward(induction.data(), c.rows, cache.data(), weights.data(), scratch.data(), dinduction.data(), dfeed.data());
      for (size_t i = 0; i < induction.size(); ++i)
        expect_close(dinduction[i], numeric_gradient(induction[i], loss), "d induction[" + std::to_string(i) + "]");
      for (size_t i = 0; i < feed.size(); ++i) expect_close(dfeed[i], numeric_gradient(feed[i], loss), "d feed[" + std::to_string(i) + "]");
    }
  }
}

TEST_CASE("Co-action unit: a single 1-output layer without bias is the FM inner product", "[coaction]") {
  // The special case the paper names: with W = P_induction as a [D, 1] matrix and no activation, the
  // unit's output for one feed vector is <P_induction, P_feed>, and over a sequence the sum of those.
  Rng rng(12);
  const CoActionView shape = shape_of(6, {1}, false, 1, false);
  CoActionUnit unit(shape);
  const size_t rows = 4;
  const std::vector<float> induction = random_values(6, rng), feed = random_values(rows * 6, rng);
  std::vector<float> cache(unit.cache_size(rows)), out(1);
  unit.forward(induction.data(), feed.data(), rows, cache.data(), out.data());
  double fm = 0.0;
  for (size_t r = 0; r < rows; ++r)
    for (size_t d = 0; d < 6; ++d) fm += static_cast<double>(induction[d]) * feed[r * 6 + d];
  CHECK(out[0] == Approx(fm).epsilon(1e-5));

}

namespace {

// The micro-MLP written out directly, in double: the reference the unit must match.
std::vector<double> naive_coaction(const CoActionView& shape, const std::vector<float>& induction, const std::vector<float>& feed,
                                   size_t rows) {
  std::vector<double> out;
  for (uint32_t c = 1; c <= shape.orders; ++c) {
    const float* block = induction.data() + (shape.order_independent ? (c - 1) * shape.block_size() : 0);
    std::vector<std::vector<double>> h(rows);
    for (size_t r = 0; r < rows; ++r)
      for (size_t d = 0; d < shape.feed_dim; ++d) h[r].push_back(std::pow(static_cast<double>(feed[r * shape.feed_dim + d]), c));
    size_t in = shape.feed_dim;
    for (size_t l = 0; l < shape.layer_sizes.size(); ++l) {
      const size_t width = shape.layer_sizes[l];
      std::vector<double> sum(width, 0.0);
      for (size_t r = 0; r < rows; ++r) {
        std::vector<double> next(width, 0.0);
        for (size_t o = 0; o < width; ++o) {
          for (size_t i = 0; i < in; ++i) next[o] += h[r][i] * block[i * width + o];
          if (shape.bias) next[o] += block[in * width + o];
          if (l + 1 < shape.layer_sizes.size()) next[o] = std::tanh(next[o]);
          sum[o] += next[o];
        }
        h[r] = next;
      }
      out.insert(out.end(), sum.begin(), sum.end());
      block += in * width + (shape.bias ? width : 0);
      in = width;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("Co-action unit: the forward pass equals the micro-MLP written out", "[coaction]") {
  Rng rng(13);
  for (const bool independent : {false, true})
    for (const bool bias : {false, true})
      for (const size_t rows : {size_t{0}, size_t{1}, size_t{7}}) {
        const CoActionView shape = shape_of(16, {8, 4}, bias, 3, independent);
        CoActionUnit unit(shape);
        const std::vector<float> induction = random_values(shape.induction_width(), rng, 0.3);
        const std::vector<float> feed = random_values(rows * 16, rng, 0.5);
        std::vector<float> cache(unit.cache_size(rows)), out(shape.output_dim());
        unit.forward(induction.data(), feed.data(), rows, cache.data(), out.data());
        const std::vector<double> expected = naive_coaction(shape, induction, feed, rows);
        REQUIRE(expected.size() == out.size());
        for (size_t i = 0; i < out.size(); ++i) CHECK(out[i] == Approx(expected[i]).margin(1e-5).epsilon(1e-5));
      }
}
