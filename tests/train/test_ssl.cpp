// The self-supervised task's pieces: the contrastive and spread-out losses (gradients through L2
// normalisation, values by hand), mutual information between features, RFM / CFM masks and value dropout.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "train/retrieval/contrastive_loss.hpp"
#include "train/retrieval/feature_masking.hpp"
#include "gradient_check.hpp"
#include "train/core/layers.hpp"
#include "train/core/rng.hpp"
#include "support.hpp"

using namespace funnel::train;
using funnel::test::expect_close;
using funnel::test::numeric_gradient;
using funnel::test::random_values;

namespace {

// A feature column from per-row id lists.
FeatureColumn make_column(FeatureKind kind, const std::vector<std::vector<uint32_t>>& rows, uint32_t cardinality) {
  FeatureColumn column;
  column.def.kind = kind;
  column.cardinality = cardinality;
  for (const auto& ids : rows) {
    column.ids.insert(column.ids.end(), ids.begin(), ids.end());
    column.offsets.push_back(static_cast<uint32_t>(column.ids.size()));
  }
  return column;
}

FeatureColumn categorical(const std::vector<uint32_t>& ids, uint32_t cardinality) {
  std::vector<std::vector<uint32_t>> rows;
  for (uint32_t id : ids) rows.push_back({id});
  return make_column(FeatureKind::kCategorical, rows, cardinality);
}

EntityTable make_table(size_t rows, std::vector<FeatureColumn> features) {
  EntityTable table;
  table.name = "item";
  for (size_t r = 0; r < rows; ++r) table.keys.push_back(std::to_string(r));
  table.features = std::move(features);
  return table;
}

// One term of eq. 4 written on counts: P(a,b) log(P(a,b) / (P(a) P(b))) with P = count / n.
double mi_term(double joint, double a, double b, double n) { return joint / n * std::log(joint * n / (a * b)); }

std::vector<double> sum(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<double> s(a.size());
  for (size_t i = 0; i < a.size(); ++i) s[i] = static_cast<double>(a[i]) + b[i];
  return s;
}

size_t count(const std::vector<uint8_t>& mask) {
  size_t c = 0;
  for (uint8_t m : mask) c += m;
  return c;
}

// The mask sets as a string of feature indices, e.g. "02" for features 0 and 2 masked in the first view.
std::string first_view(const FeatureMasks& masks) {
  std::string s;
  for (size_t f = 0; f < masks.first.size(); ++f)
    if (masks.first[f]) s += static_cast<char>('0' + f);
  return s;
}

void check_complementary(const FeatureMasks& masks, size_t k) {
  REQUIRE(masks.first.size() == k);
  REQUIRE(masks.second.size() == k);
  for (size_t f = 0; f < k; ++f) {
    INFO("k " << k << ", feature " << f);
    CHECK(masks.first[f] + masks.second[f] == 1);  // never both, never neither
  }
  CHECK(count(masks.first) == std::max<size_t>(1, k / 2));
}

}  // namespace

TEST_CASE("SSL contrastive loss: gradients through L2 normalisation, two views", "[ssl][gradient]") {
  Rng rng(101);
  const size_t n = 5, dim = 4;
  for (const float tau : {0.1f, 0.5f}) {
    std::vector<float> x = random_values(n * dim, rng), x2 = random_values(n * dim, rng);
    std::vector<float> z(n * dim), z2(n * dim), dz(n * dim), dz2(n * dim), dx(n * dim), dx2(n * dim);
    const auto loss = [&] {
      l2_normalize_forward(x.data(), n, dim, z.data());
      l2_normalize_forward(x2.data(), n, dim, z2.data());
      return contrastive_loss(z.data(), z2.data(), n, dim, tau, nullptr, nullptr);
    };
    const double value = loss();
    CHECK(contrastive_loss(z.data(), z2.data(), n, dim, tau, dz.data(), dz2.data()) == Approx(value).epsilon(1e-12));
    l2_normalize_backward(x.data(), z.data(), dz.data(), n, dim, dx.data());
    l2_normalize_backward(x2.data(), z2.data(), dz2.data(), n, dim, dx2.data());
    const std::string what = "tau " + std::to_string(tau);
    for (size_t i = 0; i < x.size(); ++i) expect_close(dx[i], numeric_gradient(x[i], loss), what + " dx");
    for (size_t i = 0; i < x2.size(); ++i) expect_close(dx2[i], numeric_gradient(x2[i], loss), what + " dx2");
  }
}

TEST_CASE("SSL contrastive loss: one shared input (identity augmentation), dz + dz2 is the gradient",
          "[ssl][gradient]") {
  Rng rng(102);
  const size_t n = 6, dim = 4;
  for (const float tau : {0.1f, 0.5f}) {
    std::vector<float> x = random_values(n * dim, rng);
    std::vector<float> z(n * dim), dz(n * dim), dz2(n * dim), dx(n * dim);
    const auto loss = [&] {
      l2_normalize_forward(x.data(), n, dim, z.data());
      return contrastive_loss(z.data(), z.data(), n, dim, tau, nullptr, nullptr);
    };
    loss();
    contrastive_loss(z.data(), z.data(), n, dim, tau, dz.data(), dz2.data());
    const std::vector<double> total = sum(dz, dz2);
    const std::vector<float> total_f(total.begin(), total.end());
    l2_normalize_backward(x.data(), z.data(), total_f.data(), n, dim, dx.data());
    for (size_t i = 0; i < x.size(); ++i)
      expect_close(dx[i], numeric_gradient(x[i], loss), "tau " + std::to_string(tau) + " shared dx");
  }
}

TEST_CASE("SSL spread-out square loss: gradient through L2 normalisation", "[ssl][gradient]") {
  Rng rng(103);
  const size_t n = 6, dim = 4;
  std::vector<float> x = random_values(n * dim, rng), z(n * dim), dz(n * dim), dx(n * dim);
  const auto loss = [&] {
    l2_normalize_forward(x.data(), n, dim, z.data());
    return spread_out_square_loss(z.data(), n, dim, nullptr);
  };
  const double value = loss();
  CHECK(spread_out_square_loss(z.data(), n, dim, dz.data()) == Approx(value).epsilon(1e-12));
  l2_normalize_backward(x.data(), z.data(), dz.data(), n, dim, dx.data());
  for (size_t i = 0; i < x.size(); ++i) expect_close(dx[i], numeric_gradient(x[i], loss), "dx");
}

TEST_CASE("SSL losses: values by hand for two rows", "[ssl][loss]") {
  // View one: (1, 0), (0, 1); view two: (0.6, 0.8), (0, 1). With tau = 0.5 the logits are
  // row 0: (0.6, 0) / 0.5 = (1.2, 0); row 1: (0.8, 1) / 0.5 = (1.6, 2); the positives are the diagonal.
  const std::vector<float> z = {1, 0, 0, 1}, z2 = {0.6f, 0.8f, 0, 1};
  const double row0 = -std::log(std::exp(1.2) / (std::exp(1.2) + std::exp(0.0)));
  const double row1 = -std::log(std::exp(2.0) / (std::exp(1.6) + std::exp(2.0)));
  CHECK(contrastive_loss(z.data(), z2.data(), 2, 2, 0.5f, nullptr, nullptr) == Approx((row0 + row1) / 2).epsilon(1e-6));

  // Identical views of orthogonal rows at tau = 1: each row's softmax is (e, 1) / (e + 1).
  const double orthogonal = std::log(1.0 + std::exp(-1.0));
  CHECK(contrastive_loss(z.data(), z.data(), 2, 2, 1.0f, nullptr, nullptr) == Approx(orthogonal).epsilon(1e-6));

  // Spread-out: s(z2_0, z2_1) = 0.8, counted for (0, 1) and (1, 0), over n (n - 1) = 2 ordered pairs.
  CHECK(spread_out_square_loss(z2.data(), 2, 2, nullptr) == Approx(0.64).epsilon(1e-6));
  CHECK(spread_out_square_loss(z.data(), 2, 2, nullptr) == Approx(0.0).margin(1e-12));
  std::vector<float> dz = {7, 7};
  CHECK(spread_out_square_loss(z.data(), 1, 2, dz.data()) == 0.0);  // one row: no pairs
  CHECK(dz == std::vector<float>{0, 0});
}

TEST_CASE("SSL contrastive loss: stable at a tiny temperature, batch 256 x 32", "[ssl][loss]") {
  Rng rng(104);
  const size_t n = 256, dim = 32;
  std::vector<float> x = random_values(n * dim, rng), z(n * dim), dz(n * dim), dz2(n * dim);
  l2_normalize_forward(x.data(), n, dim, z.data());
  // tau = 1e-3 puts the logits near 1000, where exp without the row maximum subtracted overflows.
  const double shared = contrastive_loss(z.data(), z.data(), n, dim, 1e-3f, dz.data(), dz2.data());
  CHECK(std::isfinite(shared));
  CHECK(shared == Approx(0.0).margin(1e-6));  // every row's own similarity, 1, beats all others by far
  for (size_t i = 0; i < dz.size(); ++i) REQUIRE(std::isfinite(dz[i] + dz2[i]));
  std::vector<float> y = random_values(n * dim, rng), z2(n * dim);
  l2_normalize_forward(y.data(), n, dim, z2.data());
  const double loss = contrastive_loss(z.data(), z2.data(), n, dim, 1e-3f, dz.data(), dz2.data());
  CHECK(std::isfinite(loss));
  CHECK(loss > 0.0);
  for (size_t i = 0; i < dz.size(); ++i) REQUIRE(std::isfinite(dz[i] + dz2[i]));
}

TEST_CASE("SSL mutual information: a copy, independent features, symmetry, entropy on the diagonal", "[ssl][mi]") {
  // A takes values 1..4 with multiplicities 1, 2, 3, 2 (eight slots); C and D take 4 values each; the 128 rows
  // enumerate every (slot, C, D) once, so A, C and D are exactly independent. B is A relabelled.
  const std::vector<uint32_t> slot_value = {1, 2, 2, 3, 3, 3, 4, 4};
  std::vector<uint32_t> a, b, c, d;
  for (uint32_t slot = 0; slot < 8; ++slot)
    for (uint32_t cv = 0; cv < 4; ++cv)
      for (uint32_t dv = 0; dv < 4; ++dv) {
        a.push_back(slot_value[slot]);
        b.push_back(10 + 7 * (5 - slot_value[slot]));  // 38, 31, 24, 17: another id for each A value
        c.push_back(1 + cv);
        d.push_back(1 + dv);
      }
  const size_t rows = a.size();
  const EntityTable table =
      make_table(rows, {categorical(a, 5), categorical(b, 40), categorical(c, 5), categorical(d, 5)});
  const std::vector<double> mi = mutual_information(table);
  const size_t k = 4;
  REQUIRE(mi.size() == k * k);
  const auto at = [&](size_t f, size_t g) { return mi[f * k + g]; };

  const double h_a = -(1.0 / 8 * std::log(1.0 / 8) + 2 * (2.0 / 8) * std::log(2.0 / 8) + 3.0 / 8 * std::log(3.0 / 8));
  CHECK(at(0, 0) == Approx(h_a).epsilon(1e-12));
  CHECK(at(1, 1) == Approx(h_a).epsilon(1e-12));
  CHECK(at(0, 1) == Approx(h_a).epsilon(1e-12));  // a copy carries all of A's information
  CHECK(at(2, 2) == Approx(std::log(4.0)).epsilon(1e-12));
  CHECK(at(3, 3) == Approx(std::log(4.0)).epsilon(1e-12));
  const std::vector<std::pair<size_t, size_t>> independent = {{0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
  for (const auto& [f, g] : independent) {
    INFO("MI(" << f << ", " << g << ")");
    CHECK(at(f, g) == Approx(0.0).margin(1e-12));
  }
  for (size_t f = 0; f < k; ++f)
    for (size_t g = 0; g < k; ++g) CHECK(at(f, g) == at(g, f));

  // The rows' order does not matter.
  Rng rng(105);
  std::vector<uint32_t> order(rows);
  for (uint32_t r = 0; r < rows; ++r) order[r] = r;
  rng.shuffle(order);
  const auto permuted = [&](const std::vector<uint32_t>& v) {
    std::vector<uint32_t> out;
    for (uint32_t r : order) out.push_back(v[r]);
    return out;
  };
  const EntityTable shuffled = make_table(rows, {categorical(permuted(a), 5), categorical(permuted(b), 40),
                                                 categorical(permuted(c), 5), categorical(permuted(d), 5)});
  const std::vector<double> mi_shuffled = mutual_information(shuffled);
  for (size_t i = 0; i < mi.size(); ++i) CHECK(mi_shuffled[i] == Approx(mi[i]).margin(1e-12));

  SECTION("CFM on this table: the copy goes with its original, ties to the lowest index") {
    // k = 4 masks two features per view. Seed A: {A, B}; seed B: {A, B}; seed C: C and, all its MIs being 0,
    // the lowest other index A; seed D: {A, D}.
    std::map<std::string, int> seen;
    const int draws = 4000;
    for (int i = 0; i < draws; ++i) {
      const FeatureMasks masks = correlated_feature_masks(mi, k, rng);
      check_complementary(masks, k);
      ++seen[first_view(masks)];
    }
    CHECK(seen.size() == 3);
    CHECK(seen.count("01") == 1);
    CHECK(seen.count("02") == 1);
    CHECK(seen.count("03") == 1);
    // Every seed occurs: A or B give "01" (half the draws), C gives "02", D gives "03" (a quarter each).
    CHECK(seen["01"] == Approx(draws / 2).margin(draws * 0.05));
    CHECK(seen["02"] == Approx(draws / 4).margin(draws * 0.05));
    CHECK(seen["03"] == Approx(draws / 4).margin(draws * 0.05));
  }
}

TEST_CASE("SSL mutual information: multi-valued lists, empty lists, dense features", "[ssl][mi]") {
  // Four rows. F (multi): {1, 2}, {1}, {}, {2}. G (categorical): 1, 1, 2, 2. H (multi): {5}, {5, 6}, {6}, {}.
  // E is dense. Masses per row are 1, split 1/(|A||B|) over the pairs; {} is the value "none".
  const FeatureColumn f = make_column(FeatureKind::kMultiCategorical, {{1, 2}, {1}, {}, {2}}, 3);
  const FeatureColumn g = categorical({1, 1, 2, 2}, 3);
  const FeatureColumn h = make_column(FeatureKind::kMultiCategorical, {{5}, {5, 6}, {6}, {}}, 7);
  FeatureColumn e;
  e.def.kind = FeatureKind::kDense;
  e.offsets = {0, 0, 0, 0, 0};
  e.dense = {0.1f, -0.3f, 1.2f, 0.4f};
  const std::vector<double> mi = mutual_information(make_table(4, {f, g, e, h}));
  const size_t k = 4;
  REQUIRE(mi.size() == k * k);
  const auto at = [&](size_t a, size_t b) { return mi[a * k + b]; };
  const double n = 4;

  // Marginal masses. F: 1 -> 1/2 + 1 = 1.5, 2 -> 1/2 + 1 = 1.5, none -> 1. G: 1 -> 2, 2 -> 2.
  // H: 5 -> 1 + 1/2 = 1.5, 6 -> 1/2 + 1 = 1.5, none -> 1.
  const double h_f = -(2 * (1.5 / n) * std::log(1.5 / n) + (1 / n) * std::log(1 / n));
  CHECK(at(0, 0) == Approx(h_f).epsilon(1e-12));
  CHECK(at(1, 1) == Approx(std::log(2.0)).epsilon(1e-12));
  CHECK(at(3, 3) == Approx(h_f).epsilon(1e-12));  // H has the same masses as F

  // F x G joint: (1,1) = 1/2 + 1, (2,1) = 1/2, (none,2) = 1, (2,2) = 1.
  const double fg = mi_term(1.5, 1.5, 2, n) + mi_term(0.5, 1.5, 2, n) + mi_term(1, 1, 2, n) + mi_term(1, 1.5, 2, n);
  CHECK(at(0, 1) == Approx(fg).epsilon(1e-12));
  // F x H joint: row 0 {1,2} x {5}: (1,5) 1/2, (2,5) 1/2; row 1 {1} x {5,6}: (1,5) 1/2, (1,6) 1/2;
  // row 2: (none,6) 1; row 3: (2,none) 1. So (1,5) = 1, (2,5) = 1/2, (1,6) = 1/2, (none,6) = 1, (2,none) = 1.
  const double fh = mi_term(1, 1.5, 1.5, n) + mi_term(0.5, 1.5, 1.5, n) + mi_term(0.5, 1.5, 1.5, n) +
                    mi_term(1, 1, 1.5, n) + mi_term(1, 1.5, 1, n);
  CHECK(at(0, 3) == Approx(fh).epsilon(1e-12));
  // G x H joint: (1,5) = 1 + 1/2, (1,6) = 1/2, (2,6) = 1, (2,none) = 1.
  const double gh = mi_term(1.5, 2, 1.5, n) + mi_term(0.5, 2, 1.5, n) + mi_term(1, 2, 1.5, n) + mi_term(1, 2, 1, n);
  CHECK(at(1, 3) == Approx(gh).epsilon(1e-12));
  for (size_t a = 0; a < k; ++a) {
    CHECK(at(a, 2) == 0.0);  // dense: no categorical values
    CHECK(at(2, a) == 0.0);
    for (size_t b = 0; b < k; ++b) CHECK(at(a, b) == at(b, a));
  }
}

TEST_CASE("SSL mutual information: bounds on a random multi-valued table", "[ssl][mi]") {
  Rng rng(106);
  const size_t rows = 300;
  std::vector<FeatureColumn> features;
  for (int f = 0; f < 4; ++f) {
    std::vector<std::vector<uint32_t>> lists(rows);
    for (auto& list : lists) {
      const size_t length = f < 2 ? 1 : rng.below(4);  // two categorical, two multi-valued with empties
      for (size_t i = 0; i < length; ++i) list.push_back(1 + static_cast<uint32_t>(rng.below(6)));
    }
    features.push_back(make_column(f < 2 ? FeatureKind::kCategorical : FeatureKind::kMultiCategorical, lists, 7));
  }
  // The item-id feature has as many values as rows.
  std::vector<uint32_t> item_ids(rows);
  for (uint32_t r = 0; r < rows; ++r) item_ids[r] = r + 1;
  features.push_back(categorical(item_ids, rows + 1));
  const size_t k = features.size();
  const std::vector<double> mi = mutual_information(make_table(rows, std::move(features)));
  for (size_t f = 0; f < k; ++f)
    for (size_t g = 0; g < k; ++g) {
      INFO("MI(" << f << ", " << g << ")");
      CHECK(mi[f * k + g] >= -1e-12);
      CHECK(mi[f * k + g] <= std::min(mi[f * k + f], mi[g * k + g]) + 1e-12);
      CHECK(mi[f * k + g] == mi[g * k + f]);
    }
  CHECK(mi[(k - 1) * k + k - 1] == Approx(std::log(static_cast<double>(rows))).epsilon(1e-12));
  // A feature with a distinct value per row determines every other: MI(id, g) = H(g) for categorical g.
  CHECK(mi[(k - 1) * k] == Approx(mi[0]).epsilon(1e-12));
}

TEST_CASE("SSL masks: RFM and CFM views are complementary and the first masks max(1, floor(k/2))", "[ssl][masks]") {
  Rng rng(107);
  for (size_t k = 2; k <= 7; ++k) {
    // A random symmetric MI matrix, not even diagonally dominant: the seed must still be in the first view.
    std::vector<double> mi(k * k);
    for (size_t f = 0; f < k; ++f)
      for (size_t g = f; g < k; ++g) mi[f * k + g] = mi[g * k + f] = rng.uniform();
    std::vector<int> rfm_first(k, 0), cfm_first(k, 0);
    for (int draw = 0; draw < 500; ++draw) {
      const FeatureMasks rfm = random_feature_masks(k, rng);
      check_complementary(rfm, k);
      const FeatureMasks cfm = correlated_feature_masks(mi, k, rng);
      check_complementary(cfm, k);
      for (size_t f = 0; f < k; ++f) {
        rfm_first[f] += rfm.first[f];
        cfm_first[f] += cfm.first[f];
      }
    }
    for (size_t f = 0; f < k; ++f) {
      INFO("k " << k << ", feature " << f);
      CHECK(rfm_first[f] > 0);  // RFM reaches every feature
      CHECK(rfm_first[f] < 500);
      CHECK(cfm_first[f] > 0);  // every feature is sometimes the seed
    }
  }
}

TEST_CASE("SSL masks: CFM takes the seed and its most correlated features, ties to the lower index", "[ssl][masks]") {
  Rng rng(108);
  SECTION("the seed and its best partner, each seed drawn uniformly") {
    // k = 5, two features in the first view: seed s pairs with (s + 1) % 5, its highest off-diagonal MI.
    const size_t k = 5;
    std::vector<double> mi(k * k, 0.1);
    for (size_t s = 0; s < k; ++s) {
      mi[s * k + s] = 2.0;
      mi[s * k + (s + 1) % k] = mi[((s + 1) % k) * k + s] = 1.0 + 0.1 * static_cast<double>(s);
    }
    // Seed s's row also holds (s - 1)'s pairing, 1 + 0.1 (s - 1) (below 1 + 0.1 s) except for s = 0, whose
    // row holds 1.4 for feature 4 against 1.0 for feature 1: seed 0 takes {0, 4}.
    std::map<std::string, int> seen;
    for (int draw = 0; draw < 2000; ++draw) ++seen[first_view(correlated_feature_masks(mi, k, rng))];
    // Seeds 0 and 4 both give {0, 4} (with a symmetric MI the largest pair is each other's best partner).
    CHECK(seen.size() == 4);
    CHECK(seen["04"] == Approx(2000 * 2 / 5).margin(100));
    for (const char* set : {"12", "23", "34"}) {
      INFO(set);
      CHECK(seen[set] == Approx(2000 / 5).margin(100));
    }
  }
  SECTION("a copy that ties with the seed's diagonal does not push the seed out") {
    // Features 0 and 1 are copies (MI = H), k = 3 masks one feature: it must be the seed itself.
    const size_t k = 3;
    const double h = 1.3;
    const std::vector<double> mi = {h, h, 0.2, h, h, 0.2, 0.2, 0.2, 0.9};
    std::set<std::string> seen;
    for (int draw = 0; draw < 300; ++draw) seen.insert(first_view(correlated_feature_masks(mi, k, rng)));
    CHECK(seen == std::set<std::string>{"0", "1", "2"});
  }
  SECTION("ties among the others go to the lower index") {
    // k = 7 masks three: the seed and its two best partners; every off-diagonal MI equal.
    const size_t k = 7;
    std::vector<double> mi(k * k, 0.5);
    for (size_t f = 0; f < k; ++f) mi[f * k + f] = 1.0;
    std::set<std::string> seen;
    for (int draw = 0; draw < 1000; ++draw) seen.insert(first_view(correlated_feature_masks(mi, k, rng)));
    CHECK(seen == std::set<std::string>{"012", "013", "014", "015", "016"});  // seeds 0, 1, 2 all give "012"
  }
}

TEST_CASE("SSL value dropout: thins multi-valued lists, never empties them, leaves the rest alone", "[ssl][dropout]") {
  Rng rng(109);
  const size_t rows = 4000;
  std::vector<std::vector<uint32_t>> lists(rows);
  for (auto& list : lists) {
    const size_t length = rng.below(7);  // 0 .. 6, empties included
    for (size_t i = 0; i < length; ++i) list.push_back(1 + static_cast<uint32_t>(rng.below(50)));
  }
  const FeatureColumn multi = make_column(FeatureKind::kMultiCategorical, lists, 51);
  std::vector<uint32_t> kept = {99, 98};  // cleared by every call

  // p = 0 keeps everything.
  for (size_t r = 0; r < rows; ++r) {
    drop_values(multi, r, 0.0, rng, &kept);
    REQUIRE(kept == lists[r]);
  }
  // p = 1 keeps exactly one value of a non-empty list, one of its own; an empty list stays empty.
  for (size_t r = 0; r < rows; ++r) {
    drop_values(multi, r, 1.0, rng, &kept);
    if (lists[r].empty()) {
      REQUIRE(kept.empty());
    } else {
      REQUIRE(kept.size() == 1);
      REQUIRE(std::find(lists[r].begin(), lists[r].end(), kept[0]) != lists[r].end());
    }
  }
  // The survivor of a list that p = 1 empties is drawn uniformly from it.
  const FeatureColumn four = make_column(FeatureKind::kMultiCategorical, {{7, 8, 9, 10}}, 11);
  std::map<uint32_t, int> survivors;
  for (int draw = 0; draw < 4000; ++draw) {
    drop_values(four, 0, 1.0, rng, &kept);
    REQUIRE(kept.size() == 1);
    ++survivors[kept[0]];
  }
  CHECK(survivors.size() == 4);
  for (const auto& [id, times] : survivors) {
    INFO("id " << id);
    CHECK(times == Approx(1000).margin(150));
  }
  // p = 0.5: the kept ids are a subsequence of the list (order kept), about half the values survive
  // (expected: half of each list, plus the forced survivor when all would go, probability 2^-length).
  double total = 0, survived = 0, expected = 0;
  for (size_t r = 0; r < rows; ++r) {
    drop_values(multi, r, 0.5, rng, &kept);
    const auto& list = lists[r];
    size_t j = 0;
    for (uint32_t id : kept) {
      while (j < list.size() && list[j] != id) ++j;
      REQUIRE(j < list.size());  // found, after the previous kept value
      ++j;
    }
    REQUIRE(kept.size() <= list.size());
    REQUIRE(kept.empty() == list.empty());
    total += static_cast<double>(list.size());
    survived += static_cast<double>(kept.size());
    const auto length = static_cast<double>(list.size());
    if (length > 0) expected += 0.5 * length + std::pow(0.5, length);
  }
  CHECK(survived / total == Approx(expected / total).margin(0.03));
  CHECK(survived / total > 0.45);
  CHECK(survived / total < 0.65);

  // Categorical and dense features come back unchanged, whatever p.
  const FeatureColumn single = categorical({3, 1, 4, 1, 5}, 6);
  FeatureColumn dense;
  dense.def.kind = FeatureKind::kDense;
  dense.offsets = {0, 0, 0, 0, 0, 0};
  dense.dense = {0.5f, 0.1f, 0.2f, 0.3f, 0.4f};
  for (size_t r = 0; r < 5; ++r) {
    drop_values(single, r, 1.0, rng, &kept);
    CHECK(kept == std::vector<uint32_t>{single.ids[r]});
    drop_values(dense, r, 1.0, rng, &kept);
    CHECK(kept.empty());
  }
}
