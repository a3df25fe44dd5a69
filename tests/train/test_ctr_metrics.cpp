// CTR metrics: AUC against a brute-force pairwise count, GAUC on a hand example, LogLoss against its formula.
#include <catch2/catch.hpp>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "train/ranking/ctr_metrics.hpp"
#include "train/core/rng.hpp"

using namespace funnel::train;

namespace {

// The probability that a random positive outscores a random negative, ties counted one half: O(P N).
double pairwise_auc(const std::vector<float>& scores, const std::vector<float>& labels) {
  double wins = 0.0, pairs = 0.0;
  for (size_t i = 0; i < scores.size(); ++i)
    for (size_t j = 0; j < scores.size(); ++j)
      if (labels[i] == 1.0f && labels[j] == 0.0f) {
        wins += scores[i] > scores[j] ? 1.0 : scores[i] == scores[j] ? 0.5 : 0.0;
        pairs += 1.0;
      }
  return wins / pairs;
}

}  // namespace

TEST_CASE("AUC equals the pairwise AUC with ties counted one half", "[ctr_metrics]") {
  Rng rng(41);
  for (const size_t n : {2u, 7u, 50u, 333u}) {
    for (const uint64_t levels : {3u, 10u, 1000u}) {  // few levels: mostly ties; many: almost none
      std::vector<float> scores(n), labels(n);
      for (size_t i = 0; i < n; ++i) {
        scores[i] = static_cast<float>(rng.below(levels)) * 0.1f - 0.5f;
        labels[i] = static_cast<float>(rng.below(2));
      }
      labels[0] = 1.0f;  // both classes present
      labels[1] = 0.0f;
      INFO("n " << n << ", " << levels << " score levels");
      CHECK(auc(scores, labels) == Approx(pairwise_auc(scores, labels)).epsilon(1e-12));
    }
  }
}

TEST_CASE("AUC: perfect, inverted, all tied and single-class rankings", "[ctr_metrics]") {
  const std::vector<float> labels = {0, 1, 0, 1, 1, 0};
  const std::vector<float> perfect = {0.1f, 0.8f, 0.2f, 0.9f, 0.7f, 0.3f};
  const std::vector<float> inverted = {0.9f, 0.2f, 0.8f, 0.1f, 0.3f, 0.7f};
  const std::vector<float> tied(6, 0.4f);
  CHECK(auc(perfect, labels) == 1.0);
  CHECK(auc(inverted, labels) == 0.0);
  CHECK(auc(tied, labels) == 0.5);
  const std::vector<float> positives(6, 1.0f);
  CHECK(std::isnan(auc(perfect, positives)));
  CHECK(std::isnan(auc({}, {})));
  CHECK_THROWS_AS(auc(perfect, std::vector<float>(5, 0.0f)), std::invalid_argument);
}

// Users, interleaved in the input:
//   user 7: positives 0.9, 0.3; negatives 0.5, 0.1 -> pairs won 0.9>0.5, 0.9>0.1, 0.3>0.1, lost 0.3<0.5: AUC 3/4.
//   user 2: positive 0.2, negative 0.8 -> AUC 0.
//   user 5: three negatives -> one class only, left out (not counted as 0 or 1/2).
//   user 9: positive 0.4; negatives 0.4 (tie, 1/2) and 0.1 (won) -> AUC (1/2 + 1) / 2 = 3/4.
// GAUC = (4 * 3/4 + 2 * 0 + 3 * 3/4) / (4 + 2 + 3) = 5.25 / 9 = 0.583333...
TEST_CASE("GAUC: instance-weighted per-user AUC without single-class users", "[ctr_metrics]") {
  const std::vector<uint32_t> users = {7, 2, 5, 9, 7, 5, 9, 7, 2, 9, 5, 7};
  const std::vector<float> scores = {0.9f, 0.2f, 0.6f, 0.4f, 0.5f, 0.7f, 0.4f, 0.3f, 0.8f, 0.1f, 0.95f, 0.1f};
  const std::vector<float> labels = {1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0};
  CHECK(gauc(users, scores, labels) == Approx(5.25 / 9.0).epsilon(1e-12));

  const std::vector<uint32_t> one_class_users = {1, 1, 2};
  const std::vector<float> s = {0.1f, 0.2f, 0.3f}, l = {1, 1, 0};
  CHECK(std::isnan(gauc(one_class_users, s, l)));
  CHECK_THROWS_AS(gauc(one_class_users, s, std::vector<float>(2, 0.0f)), std::invalid_argument);
}

TEST_CASE("LogLoss: the mean BCE of sigmoid(logit) in double precision", "[ctr_metrics]") {
  Rng rng(42);
  std::vector<float> logits(40), labels(40);
  double expected = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) {
    logits[i] = static_cast<float>(4.0 * rng.normal());
    labels[i] = static_cast<float>(rng.below(2));
    const double p = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[i])));
    expected += labels[i] == 1.0f ? -std::log(p) : -std::log(1.0 - p);
  }
  CHECK(log_loss(logits, labels) == Approx(expected / 40.0).epsilon(1e-10));
  // Where 1 - p rounds to 0 the direct formula breaks down; from the logit the cost is |x| (+ a vanishing term).
  const std::vector<float> extreme = {200.0f, -200.0f, 1e30f}, extreme_labels = {0, 1, 1};
  CHECK(log_loss(extreme, extreme_labels) == Approx(400.0 / 3.0).epsilon(1e-12));
}

TEST_CASE("ctr_metrics: AUC and GAUC of the logits equal those of the probabilities", "[ctr_metrics]") {
  Rng rng(43);
  const size_t n = 200;
  std::vector<uint32_t> users(n);
  std::vector<float> logits(n), probabilities(n), labels(n);
  for (size_t i = 0; i < n; ++i) {
    users[i] = static_cast<uint32_t>(rng.below(20));
    logits[i] = static_cast<float>(2.0 * rng.normal());
    probabilities[i] = static_cast<float>(1.0 / (1.0 + std::exp(-static_cast<double>(logits[i]))));
    labels[i] = static_cast<float>(rng.below(2));
  }
  const CtrMetrics metrics = ctr_metrics(users, logits, labels);
  CHECK(metrics.instances == n);
  CHECK(metrics.auc == Approx(auc(probabilities, labels)).epsilon(1e-12));
  CHECK(metrics.gauc == Approx(gauc(users, probabilities, labels)).epsilon(1e-12));
  CHECK(metrics.logloss == log_loss(logits, labels));
}
