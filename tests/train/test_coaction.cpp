// CAN's co-action unit: gradient checks over orders, biases, layer stacks and order independence; the
// FM special case; the trainer's unit against the SDK's.
#include <catch2/catch.hpp>
#include <cmath>

#include "coaction.hpp"
#include "funnel/ranker.hpp"
#include "gradient_check.hpp"
#include "rng.hpp"
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

  // The SDK's unit agrees.
  std::vector<float> powers(rows * 6), micro(2 * rows * 6), sdk_out(1);
  funnel::coaction_feed_powers(shape, feed.data(), rows, powers.data());
  funnel::coaction_forward(shape, induction.data(), powers.data(), rows, micro.data(), sdk_out.data());
  CHECK(sdk_out[0] == Approx(fm).epsilon(1e-5));
}

TEST_CASE("Co-action unit: the trainer's forward equals the SDK's", "[coaction][parity]") {
  Rng rng(13);
  for (const bool independent : {false, true})
    for (const size_t rows : {size_t{0}, size_t{1}, size_t{7}}) {
      const CoActionView shape = shape_of(16, {8, 4}, true, 3, independent);
      CoActionUnit unit(shape);
      const std::vector<float> induction = random_values(shape.induction_width(), rng, 0.3);
      const std::vector<float> feed = random_values(rows * 16, rng, 0.5);
      std::vector<float> cache(unit.cache_size(rows)), out(shape.output_dim());
      unit.forward(induction.data(), feed.data(), rows, cache.data(), out.data());
      std::vector<float> powers(3 * rows * 16), micro(2 * std::max<size_t>(rows, 1) * 16), sdk_out(shape.output_dim());
      funnel::coaction_feed_powers(shape, feed.data(), rows, powers.data());
      funnel::coaction_forward(shape, induction.data(), powers.data(), rows, micro.data(), sdk_out.data());
      for (size_t i = 0; i < out.size(); ++i) CHECK(sdk_out[i] == Approx(out[i]).margin(1e-5).epsilon(1e-5));
      if (rows == 0)
        for (float v : out) CHECK(v == 0.0f);
    }
}
