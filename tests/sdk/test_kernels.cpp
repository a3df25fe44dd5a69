// The inference kernels against plain loops, and top-K's order.
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>

#include "funnel/kernels.hpp"
#include "train/core/rng.hpp"

using namespace funnel;

TEST_CASE("Kernels: dot and scan agree with a double-precision loop", "[kernels]") {
  funnel::train::Rng rng(3);
  for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{32}, size_t{33}, size_t{100}}) {
    std::vector<float> a(n), b(n);
    for (size_t i = 0; i < n; ++i) {
      a[i] = static_cast<float>(rng.normal());
      b[i] = static_cast<float>(rng.normal());
    }
    double expected = 0;
    for (size_t i = 0; i < n; ++i) expected += static_cast<double>(a[i]) * b[i];
    INFO("n = " << n << ", kernels " << kernels::isa());
    CHECK(kernels::dot(a.data(), b.data(), n) == Approx(expected).margin(1e-5));
  }
  const size_t rows = 37, dim = 19;
  std::vector<float> matrix(rows * dim), query(dim), scores(rows);
  for (float& x : matrix) x = static_cast<float>(rng.normal());
  for (float& x : query) x = static_cast<float>(rng.normal());
  kernels::scan_f32(matrix.data(), rows, dim, query.data(), scores.data());
  for (size_t r = 0; r < rows; ++r) CHECK(scores[r] == kernels::dot(matrix.data() + r * dim, query.data(), dim));
}

TEST_CASE("Kernels: dense layer", "[kernels]") {
  const std::vector<float> weight = {1, 2, 3, 4, 5, 6};  // [2, 3]
  const std::vector<float> bias = {0.5f, -1};
  const std::vector<float> x = {1, 0, -1};
  std::vector<float> y(2);
  kernels::dense_forward(weight.data(), bias.data(), 2, 3, x.data(), y.data());
  CHECK(y[0] == Approx(0.5f + 1 - 3));
  CHECK(y[1] == Approx(-1 + 4 - 6));
}

TEST_CASE("Top-K: best first, ties to the lower index, skips honoured", "[kernels]") {
  const std::vector<float> scores = {0.5f, 0.9f, 0.5f, 0.1f, 0.9f, 0.7f};
  std::vector<Hit> hits;
  kernels::top_k(scores, 4, {}, &hits);
  REQUIRE(hits.size() == 4);
  CHECK(hits[0].index == 1);
  CHECK(hits[1].index == 4);
  CHECK(hits[2].index == 5);
  CHECK(hits[3].index == 0);
  const std::vector<uint8_t> skip = {0, 1, 0, 0, 0, 0};
  kernels::top_k(scores, 2, skip, &hits);
  CHECK(hits[0].index == 4);
  CHECK(hits[1].index == 5);
  kernels::top_k(scores, 100, {}, &hits);
  CHECK(hits.size() == scores.size());
  kernels::top_k(scores, 0, {}, &hits);
  CHECK(hits.empty());
}

TEST_CASE("Top-K: agrees with a full sort on random scores", "[kernels]") {
  funnel::train::Rng rng(9);
  std::vector<float> scores(5000);
  for (float& s : scores) s = static_cast<float>(static_cast<int>(rng.below(200)));  // many ties
  std::vector<uint32_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return scores[a] > scores[b]; });
  std::vector<Hit> hits;
  kernels::top_k(scores, 50, {}, &hits);
  for (size_t i = 0; i < hits.size(); ++i) CHECK(hits[i].index == order[i]);
}

TEST_CASE("Kernels: tanh within 2 ulp of the standard library's, and exact at the ends", "[kernels]") {
  std::vector<float> x;
  for (float v = -12.0f; v <= 12.0f; v += 0.00137f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-8f, 0.625f, -0.625f, 0.62499994f, 9.0f, 50.0f, -50.0f, 1e30f}) x.push_back(v);
  std::vector<float> y = x;
  funnel::kernels::tanh_inplace(y.data(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double exact = std::tanh(static_cast<double>(x[i]));
    const double ulp = std::max(std::fabs(std::nextafter(static_cast<float>(exact), 2.0f) - static_cast<float>(exact)), 1e-45f);
    INFO("x = " << x[i] << ": " << y[i] << " vs " << exact);
    CHECK(std::fabs(y[i] - exact) <= 2.0 * ulp);
  }
}
