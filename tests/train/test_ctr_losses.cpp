// CTR losses: BCE, focal and GHM-C values, gradients and their behaviour at extreme logits.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "train/ranking/ctr_losses.hpp"
#include "gradient_check.hpp"
#include "train/core/rng.hpp"
#include "support.hpp"

using namespace funnel::train;
using funnel::test::expect_close;
using funnel::test::numeric_gradient;
using funnel::test::random_values;

namespace {

// The logit whose sigmoid is p.
float logit_of(double p) { return static_cast<float>(std::log(p / (1.0 - p))); }

std::vector<float> random_labels(size_t n, Rng& rng) {
  std::vector<float> labels(n);
  for (float& y : labels) y = static_cast<float>(rng.below(2));
  return labels;
}

double direct_bce(double x, double y) {
  const double p = 1.0 / (1.0 + std::exp(-x));
  return -y * std::log(p) - (1.0 - y) * std::log(1.0 - p);
}

// -log q, the cross-entropy of an instance whose predicted probability of its own label is q.
double nll(double q) { return -std::log(q); }

}  // namespace

TEST_CASE("BCE: value and gradient", "[ctr_loss][gradient]") {
  Rng rng(31);
  std::vector<float> logits = random_values(9, rng, 2.0), labels = random_labels(9, rng), dlogits(9), scratch(9);
  const float value = bce_loss(logits, labels, dlogits);
  double expected = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) expected += direct_bce(logits[i], labels[i]);
  CHECK(value == Approx(expected / 9.0).epsilon(1e-6));
  const auto loss = [&] { return static_cast<double>(bce_loss(logits, labels, scratch)); };
  for (size_t i = 0; i < logits.size(); ++i) expect_close(dlogits[i], numeric_gradient(logits[i], loss), "BCE dlogit");

  std::vector<float> zero = {0.0f, 0.0f}, half_labels = {0.0f, 1.0f}, d(2);
  CHECK(bce_loss(zero, half_labels, d) == Approx(std::log(2.0)));
  CHECK(d[0] == Approx(0.25));
  CHECK(d[1] == Approx(-0.25));
}

TEST_CASE("Focal loss: gradients over gamma, alpha and soft labels", "[ctr_loss][gradient]") {
  Rng rng(32);
  std::vector<float> logits = random_values(10, rng, 2.0), hard = random_labels(10, rng), soft(10);
  for (float& y : soft) y = static_cast<float>(rng.uniform());
  for (const float gamma : {0.0f, 0.5f, 1.0f, 2.0f, 3.0f})
    for (const float alpha : {0.25f, 0.5f})
      for (const auto* labels : {&hard, &soft}) {
        const FocalOptions options{gamma, alpha};
        std::vector<float> dlogits(10), scratch(10);
        focal_loss(logits, *labels, options, dlogits);
        const auto loss = [&] { return static_cast<double>(focal_loss(logits, *labels, options, scratch)); };
        const std::string what = "focal gamma " + std::to_string(gamma) + " alpha " + std::to_string(alpha) +
                                 (labels == &hard ? " hard" : " soft") + " labels";
        for (size_t i = 0; i < logits.size(); ++i) expect_close(dlogits[i], numeric_gradient(logits[i], loss), what);
      }
}

TEST_CASE("Focal loss: relation to BCE and the per-instance formula", "[ctr_loss]") {
  Rng rng(33);
  const size_t n = 12;
  std::vector<float> logits = random_values(n, rng, 3.0), labels = random_labels(n, rng);
  std::vector<float> d_bce(n), d_focal(n);
  const float bce = bce_loss(logits, labels, d_bce);

  // gamma 0, alpha 0.5: every instance weighs 0.5, so loss and gradient are half the BCE's.
  const float half = focal_loss(logits, labels, {0.0f, 0.5f}, d_focal);
  CHECK(half == Approx(0.5 * bce).epsilon(1e-6));
  for (size_t i = 0; i < n; ++i) CHECK(d_focal[i] == Approx(0.5 * d_bce[i]).epsilon(1e-6).margin(1e-9));

  // gamma 0 in general: alpha_t-weighted BCE, alpha for positives and 1 - alpha for negatives.
  const float alpha = 0.25f;
  const float weighted = focal_loss(logits, labels, {0.0f, alpha}, d_focal);
  double expected = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double alpha_t = labels[i] == 1.0f ? alpha : 1.0 - alpha;
    expected += alpha_t * direct_bce(logits[i], labels[i]);
    CHECK(d_focal[i] == Approx(alpha_t * d_bce[i]).epsilon(1e-6).margin(1e-9));
  }
  CHECK(weighted == Approx(expected / n).epsilon(1e-6));

  // Any gamma: -alpha_t (1 - p_t)^gamma log p_t, averaged.
  const float gamma = 2.0f;
  const float focal = focal_loss(logits, labels, {gamma, alpha}, d_focal);
  expected = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double p = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[i])));
    const double p_t = labels[i] == 1.0f ? p : 1.0 - p;
    const double alpha_t = labels[i] == 1.0f ? alpha : 1.0 - alpha;
    expected += -alpha_t * std::pow(1.0 - p_t, gamma) * std::log(p_t);
  }
  CHECK(focal == Approx(expected / n).epsilon(1e-5));
  // The focusing term only shrinks each instance's loss.
  CHECK(focal < weighted);
}

TEST_CASE("CTR losses stay finite at extreme logits with labels 0 and 1", "[ctr_loss]") {
  const std::vector<float> magnitudes = {30.0f, 100.0f, 1e4f, 1e30f};
  for (const float m : magnitudes) {
    // Confident and right, then confident and wrong, for both labels.
    const std::vector<float> logits = {m, -m, -m, m}, labels = {1.0f, 0.0f, 1.0f, 0.0f};
    std::vector<float> d(4);
    const auto check_finite = [&](float value, const std::string& what) {
      INFO(what << " at |logit| " << m);
      CHECK(std::isfinite(value));
      for (const float g : d) CHECK(std::isfinite(g));
    };
    const float bce = bce_loss(logits, labels, d);
    check_finite(bce, "BCE");
    // The two wrong instances cost |x| each; the right ones cost (almost) nothing.
    CHECK(bce == Approx(2.0 * m / 4.0).epsilon(1e-5));
    CHECK(d[0] == Approx(0.0).margin(1e-9));
    CHECK(d[2] == Approx(-0.25));
    CHECK(d[3] == Approx(0.25));
    for (const float gamma : {0.5f, 2.0f}) {
      const float focal = focal_loss(logits, labels, {gamma, 0.25f}, d);
      check_finite(focal, "focal, gamma " + std::to_string(gamma));
      // A miss of ~1 leaves the wrong instances at alpha_t |x| and their gradients at -+alpha_t / n.
      CHECK(focal == Approx((0.25 * m + 0.75 * m) / 4.0).epsilon(1e-5));
      CHECK(d[1] == Approx(0.0).margin(1e-9));
      CHECK(d[2] == Approx(-0.25 / 4.0));
      CHECK(d[3] == Approx(0.75 / 4.0));
    }
    GhmC ghm;
    check_finite(ghm.loss(logits, labels, d), "GHM-C");
  }
}

// GHM-C by hand, 30 bins (edges i/30), momentum 0.75. Logits are chosen so that g = |p - y| is exactly
// 0.05 (bin 1: [0.033, 0.067)), 0.25 (bin 7: [0.233, 0.267)), 0.55 (bin 16: [0.533, 0.567)) or 0.95
// (bin 28: [0.933, 0.967)), well inside the bins. L(q) = -log q.
//
// Step 1, 4 instances, tot = 4:
//   a: y 0, p 0.05 (g 0.05, bin 1)    b: y 1, p 0.95 (g 0.05, bin 1)
//   c: y 0, p 0.25 (g 0.25, bin 7)    d: y 1, p 0.05 (g 0.95, bin 28)
//   counts: bin 1: 2, bin 7: 1, bin 28: 1 -> acc1 = 0.25 * 2 = 0.5, acc7 = acc28 = 0.25; 3 non-empty bins.
//   beta_a = beta_b = 4 / 0.5 / 3 = 8/3; beta_c = beta_d = 4 / 0.25 / 3 = 16/3.
//   loss = (8/3 (L(0.95) + L(0.95)) + 16/3 L(0.75) + 16/3 L(0.05)) / 4 = 4/3 (L(0.95) + L(0.75) + L(0.05))
//        = 4.4462769.
//   dlogit = beta (p - y) / 4: a 8/3 * 0.05 / 4, b 8/3 * -0.05 / 4, c 16/3 * 0.25 / 4, d 16/3 * -0.95 / 4.
// Step 2, 2 instances, tot = 2; bins 7 and 28 are empty and keep acc 0.25 (not 0.75 * 0.25):
//   e: y 0, p 0.05 (bin 1)    f: y 1, p 0.45 (g 0.55, bin 16)
//   acc1 = 0.75 * 0.5 + 0.25 * 1 = 0.625, acc16 = 0.25; 2 non-empty bins.
//   beta_e = 2 / 0.625 / 2 = 1.6, beta_f = 2 / 0.25 / 2 = 4.
//   loss = (1.6 L(0.95) + 4 L(0.45)) / 2 = 1.6380500.
// Step 3, 1 instance, tot = 1: g: y 0, p 0.25 (bin 7), the bin that was empty in step 2.
//   acc7 = 0.75 * 0.25 + 0.25 * 1 = 0.4375 (it would be 0.390625 had step 2 decayed it); 1 non-empty bin.
//   beta_g = 1 / 0.4375; loss = L(0.75) / 0.4375 = 0.6575590.
TEST_CASE("GHM-C: hand example over three momentum steps with an empty bin", "[ctr_loss][ghm]") {
  GhmC ghm;
  REQUIRE(ghm.bins() == 30);
  const auto expect_state = [&](const std::vector<std::pair<size_t, double>>& nonzero) {
    std::vector<double> expected(30, 0.0);
    for (const auto& [bin, value] : nonzero) expected[bin] = value;
    for (size_t b = 0; b < 30; ++b) {
      INFO("bin " << b);
      CHECK(ghm.accumulated()[b] == Approx(expected[b]).margin(1e-7));
    }
  };

  const std::vector<float> logits1 = {logit_of(0.05), logit_of(0.95), logit_of(0.25), logit_of(0.05)};
  const std::vector<float> labels1 = {0, 1, 0, 1};
  std::vector<float> d1(4);
  CHECK(ghm.loss(logits1, labels1, d1) == Approx(4.0 / 3.0 * (nll(0.95) + nll(0.75) + nll(0.05))).epsilon(1e-6));
  CHECK(4.0 / 3.0 * (nll(0.95) + nll(0.75) + nll(0.05)) == Approx(4.4462769));
  expect_state({{1, 0.5}, {7, 0.25}, {28, 0.25}});
  CHECK(d1[0] == Approx(8.0 / 3.0 * 0.05 / 4.0).epsilon(1e-5));
  CHECK(d1[1] == Approx(8.0 / 3.0 * -0.05 / 4.0).epsilon(1e-5));
  CHECK(d1[2] == Approx(16.0 / 3.0 * 0.25 / 4.0).epsilon(1e-5));
  CHECK(d1[3] == Approx(16.0 / 3.0 * -0.95 / 4.0).epsilon(1e-5));

  const std::vector<float> logits2 = {logit_of(0.05), logit_of(0.45)}, labels2 = {0, 1};
  std::vector<float> d2(2);
  CHECK(ghm.loss(logits2, labels2, d2) == Approx((1.6 * nll(0.95) + 4.0 * nll(0.45)) / 2.0).epsilon(1e-6));
  CHECK((1.6 * nll(0.95) + 4.0 * nll(0.45)) / 2.0 == Approx(1.6380500));
  expect_state({{1, 0.625}, {7, 0.25}, {16, 0.25}, {28, 0.25}});
  CHECK(d2[0] == Approx(1.6 * 0.05 / 2.0).epsilon(1e-5));
  CHECK(d2[1] == Approx(4.0 * -0.55 / 2.0).epsilon(1e-5));

  const std::vector<float> logits3 = {logit_of(0.25)}, labels3 = {0};
  std::vector<float> d3(1);
  CHECK(ghm.loss(logits3, labels3, d3) == Approx(nll(0.75) / 0.4375).epsilon(1e-6));
  CHECK(nll(0.75) / 0.4375 == Approx(0.6575590));
  expect_state({{1, 0.625}, {7, 0.4375}, {16, 0.25}, {28, 0.25}});
  CHECK(d3[0] == Approx(0.25 / 0.4375).epsilon(1e-5));
}

TEST_CASE("GHM-C: momentum 0 weighs by the batch's own counts", "[ctr_loss][ghm]") {
  // Step 1 of the hand example: beta = 4 / count / 3, i.e. 2/3 for a and b, 4/3 for c and d, so
  // loss = (2/3 * 2 L(0.95) + 4/3 L(0.75) + 4/3 L(0.05)) / 4 = (L(0.95) + L(0.75) + L(0.05)) / 3.
  GhmC ghm(30, 0.0f);
  const std::vector<float> logits = {logit_of(0.05), logit_of(0.95), logit_of(0.25), logit_of(0.05)};
  const std::vector<float> labels = {0, 1, 0, 1};
  std::vector<float> d(4);
  const double expected = (nll(0.95) + nll(0.75) + nll(0.05)) / 3.0;
  CHECK(ghm.loss(logits, labels, d) == Approx(expected).epsilon(1e-6));
  // No memory: a different batch in between changes nothing.
  const std::vector<float> other = {logit_of(0.85), logit_of(0.62)}, other_labels = {1, 1};
  std::vector<float> d_other(2);
  ghm.loss(other, other_labels, d_other);
  CHECK(ghm.loss(logits, labels, d) == Approx(expected).epsilon(1e-6));
  // Each instance alone in its bin (g 0.15: bin 4, g 0.38: bin 11): beta = tot / 1 / 2 = 1, so GHM-C is plain
  // mean BCE.
  std::vector<float> d_bce(2);
  CHECK(ghm.loss(other, other_labels, d_other) == Approx(bce_loss(other, other_labels, d_bce)).epsilon(1e-6));
  for (size_t i = 0; i < 2; ++i) CHECK(d_other[i] == Approx(d_bce[i]).epsilon(1e-6));
}

TEST_CASE("GHM-C: gradient of the weighted loss at frozen weights", "[ctr_loss][ghm][gradient]") {
  Rng rng(34);
  const size_t n = 16;
  GhmC ghm;
  // Two batches first, so the state the weights come from is a real EMA.
  for (int step = 0; step < 2; ++step) {
    std::vector<float> logits = random_values(n, rng, 2.0), labels = random_labels(n, rng), d(n);
    ghm.loss(logits, labels, d);
  }
  std::vector<float> logits = random_values(n, rng, 2.0), labels = random_labels(n, rng);
  // The weights are constants only while no instance changes bin: keep every g at least 0.005 from an edge
  // (a step of 1e-3 in the logit moves g by at most 2.5e-4).
  for (size_t i = 0; i < n; ++i) {
    for (;;) {
      const double g = std::fabs(1.0 / (1.0 + std::exp(-static_cast<double>(logits[i]))) - labels[i]);
      const double nearest_inner_edge = std::clamp(std::round(g * 30.0), 1.0, 29.0) / 30.0;
      if (std::fabs(g - nearest_inner_edge) >= 0.005) break;
      logits[i] += 0.1f;
    }
  }
  const GhmC before = ghm;
  std::vector<float> dlogits(n), scratch(n);
  ghm.loss(logits, labels, dlogits);
  // Each evaluation starts from a copy of the state before this batch, so it sees the same weights.
  const auto loss = [&] {
    GhmC frozen = before;
    const double value = frozen.loss(logits, labels, scratch);
    CHECK(frozen.accumulated() == ghm.accumulated());
    return value;
  };
  for (size_t i = 0; i < n; ++i) expect_close(dlogits[i], numeric_gradient(logits[i], loss), "GHM-C dlogit");
}

TEST_CASE("GHM-C: restore, empty batches and bad arguments", "[ctr_loss][ghm]") {
  Rng rng(35);
  std::vector<float> logits1 = random_values(8, rng, 2.0), labels1 = random_labels(8, rng), d(8);
  std::vector<float> logits2 = random_values(8, rng, 2.0), labels2 = random_labels(8, rng), d_restored(8);
  GhmC original;
  original.loss(logits1, labels1, d);

  GhmC restored;
  restored.restore(original.accumulated());
  CHECK(restored.loss(logits2, labels2, d_restored) == original.loss(logits2, labels2, d));
  CHECK(restored.accumulated() == original.accumulated());
  CHECK(d_restored == d);

  CHECK_THROWS_AS(restored.restore(std::vector<float>(29, 0.0f)), std::invalid_argument);
  CHECK_THROWS_AS(restored.restore({}), std::invalid_argument);
  CHECK(restored.accumulated() == original.accumulated());

  // An empty batch: loss 0 (the official tot = max(count, 1)), no bin touched.
  const std::vector<float> state = original.accumulated();
  CHECK(original.loss({}, {}, {}) == 0.0f);
  CHECK(original.accumulated() == state);

  CHECK_THROWS_AS(GhmC(0, 0.75f), std::invalid_argument);
  CHECK_THROWS_AS(GhmC(30, 1.0f), std::invalid_argument);
  CHECK_THROWS_AS(GhmC(30, -0.1f), std::invalid_argument);
  CHECK_THROWS_AS(original.loss(logits1, labels2, std::span<float>(d).first(7)), std::invalid_argument);
}
