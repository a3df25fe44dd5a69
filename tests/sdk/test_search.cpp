// Catalogue search in every precision: the half and int8 codecs, the scans against double-precision
// sums, batched and threaded search against one query on one thread, and the int8 path's agreement with
// the exact top-100. SDK-only, so it also runs under ThreadSanitizer and on ARM.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <set>

#include "catalogue_fixture.hpp"
#include "funnel/precision.hpp"
#include "funnel/search.hpp"

using namespace funnel;
using funnel::test::Catalogue;
using funnel::test::kPrecisions;
using funnel::test::normal_floats;

namespace {

bool same_hits(const std::vector<Hit>& a, const std::vector<Hit>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].index != b[i].index || std::memcmp(&a[i].score, &b[i].score, sizeof(float)) != 0) return false;
  return true;
}

}  // namespace

TEST_CASE("Half precision: every half survives a round trip, and floats round to nearest even", "[precision]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float x = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(x)) {
      CHECK(std::isnan(half_to_float(float_to_half(x))));
      continue;
    }
    INFO("half 0x" << std::hex << h);
    REQUIRE(float_to_half(x) == h);
  }
  CHECK(float_to_half(1.0f) == 0x3c00);
  CHECK(float_to_half(-2.0f) == 0xc000);
  CHECK(float_to_half(65504.0f) == 0x7bff);
  CHECK(float_to_half(65519.0f) == 0x7bff);  // below the midpoint to 65536: rounds down
  CHECK(float_to_half(65520.0f) == 0x7c00);  // the midpoint rounds to even: infinity
  CHECK(float_to_half(1e10f) == 0x7c00);
  CHECK(float_to_half(std::ldexp(1.0f, -24)) == 0x0001);  // the smallest subnormal
  CHECK(float_to_half(std::ldexp(1.0f, -26)) == 0x0000);  // a quarter of it rounds to zero
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);      // a tie: to the even mantissa
  CHECK(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);  // a tie: to the even mantissa
  CHECK(half_to_float(0x7c00) == std::numeric_limits<float>::infinity());
  CHECK(half_to_float(0x8001) == -std::ldexp(1.0f, -24));
  for (float x : normal_floats(10000, 4))  // within half an ulp of the half: 2^-11 relative, 2^-25 among subnormals
    CHECK(std::fabs(half_to_float(float_to_half(x)) - x) <= std::max(std::fabs(x) * std::ldexp(1.0, -11), std::ldexp(1.0, -25)));
}

TEST_CASE("Int8 rows: every value within half a step of its decoding", "[precision]") {
  const size_t rows = 50, dim = 33;
  std::vector<float> x = normal_floats(rows * dim, 5);
  for (size_t i = 0; i < dim; ++i) x[7 * dim + i] = 0.0f;  // a zero row
  std::vector<int8_t> q(x.size());
  std::vector<float> scales(rows);
  quantize_rows_i8(x.data(), rows, dim, q.data(), scales.data());
  CHECK(scales[7] == 1.0f);
  for (size_t r = 0; r < rows; ++r) {
    int largest = 0;
    for (size_t i = 0; i < dim; ++i) {
      CHECK(std::fabs(x[r * dim + i] - scales[r] * q[r * dim + i]) <= scales[r] * 0.5f * 1.0001f);
      largest = std::max(largest, std::abs(int{q[r * dim + i]}));
    }
    if (r != 7) CHECK(largest == 127);
  }
}

TEST_CASE("Scans: every precision against double sums of the decoded rows, and batches equal single scans", "[search]") {
  for (size_t dim : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{17}, size_t{64}, size_t{100}, size_t{600}, size_t{4097}}) {
    const Catalogue catalogue(23, dim, static_cast<uint32_t>(dim));
    const std::vector<float> queries = normal_floats(5 * dim, 99);
    for (Precision p : kPrecisions) {
      INFO("dim " << dim << ", " << precision_name(p) << ", kernels " << kernels::isa());
      const EmbeddingRows rows = catalogue.view(p);
      std::vector<float> scores(rows.rows), batch(5 * rows.rows), part(rows.rows - 6);
      for (size_t q = 0; q < 5; ++q) {
        kernels::scan(rows, 0, rows.rows, queries.data() + q * dim, scores.data());
        // int8 rows meet a query rounded to integers: the documented step (kernels.hpp).
        double largest = 0;
        for (size_t i = 0; i < dim; ++i) largest = std::max(largest, double{std::fabs(queries[q * dim + i])});
        const double step = p == Precision::kI8 ? largest / std::min<double>(32767, std::floor(2147483647.0 / (128.0 * dim))) : 0;
        for (size_t r = 0; r < rows.rows; ++r) {
          double expected = 0, magnitude = 0, row_norm1 = 0;
          for (size_t i = 0; i < dim; ++i) {
            expected += catalogue.decoded(p, r, i) * queries[q * dim + i];
            magnitude += std::fabs(catalogue.decoded(p, r, i) * queries[q * dim + i]);
            row_norm1 += std::fabs(catalogue.decoded(p, r, i));
          }
          REQUIRE(std::fabs(scores[r] - expected) <= 1e-6 * (magnitude + step * row_norm1) + step / 2 * row_norm1 + 1e-7);
        }
        kernels::scan(rows, 5, rows.rows - 1, queries.data() + q * dim, part.data());  // a sub-range
        for (size_t r = 5; r + 1 < rows.rows; ++r) REQUIRE(part[r - 5] == scores[r]);
      }
      // Batches: scores agree with scan()'s to rounding (and int8 to scan()'s rounding of the query), and a
      // score does not depend on the batch it came in (query 3 alone, rows 2-19).
      kernels::scan_batch(rows, 0, rows.rows, queries.data(), 5, batch.data());
      std::vector<float> alone(rows.rows);
      kernels::scan_batch(rows, 2, 20, queries.data() + 3 * dim, 1, alone.data());
      for (size_t r = 2; r < 20; ++r) REQUIRE(alone[r - 2] == batch[r * 5 + 3]);
      for (size_t q = 0; q < 5; ++q) {
        kernels::scan(rows, 0, rows.rows, queries.data() + q * dim, scores.data());
        // scan() rounds an int8 query to 16-bit steps, and with AVX512-VNNI the batch rounds it to 8-bit ones
        // (kernels.hpp): the two differ by at most the sum of their errors.
        double largest = 0;
        for (size_t i = 0; i < dim; ++i) largest = std::max(largest, double{std::fabs(queries[q * dim + i])});
        const double step = p == Precision::kI8 ? largest / std::min<double>(32767, std::floor(2147483647.0 / (128.0 * dim))) +
                                                      largest / 127 : 0;
        for (size_t r = 0; r < rows.rows; ++r) {
          double magnitude = 0, row_norm1 = 0;
          for (size_t i = 0; i < dim; ++i) {
            magnitude += std::fabs(catalogue.decoded(p, r, i) * queries[q * dim + i]);
            row_norm1 += std::fabs(catalogue.decoded(p, r, i));
          }
          REQUIRE(std::fabs(batch[r * 5 + q] - scores[r]) <= 2e-6 * (magnitude + step * row_norm1) + step / 2 * row_norm1 + 1e-7);
        }
      }
    }
  }
}

TEST_CASE("Int8 scans: no overflow at the extremes, a zero query, a non-finite query", "[search]") {
  // -128 (which the exporter never writes, but a file may hold) in every element of 5,000 dimensions (the
  // query rounded to fewer levels), against the largest query integers.
  const size_t dim = 5000;
  const std::vector<int8_t> data(2 * dim, -128);
  const std::vector<float> scales = {0.5f, 2.0f};
  const EmbeddingRows rows{Precision::kI8, data.data(), scales.data(), 2, dim};
  std::vector<float> query(dim, -3.0f), scores(2);
  kernels::scan(rows, 0, 2, query.data(), scores.data());
  CHECK(scores[0] == Approx(0.5 * 128 * 3 * dim).epsilon(1e-6));
  CHECK(scores[1] == Approx(2.0 * 128 * 3 * dim).epsilon(1e-6));
  std::fill(query.begin(), query.end(), 0.0f);
  kernels::scan(rows, 0, 2, query.data(), scores.data());
  CHECK(scores[0] == 0.0f);
  query[7] = std::nanf("");
  kernels::scan(rows, 0, 2, query.data(), scores.data());
  CHECK(std::isnan(scores[0]));
  query[7] = INFINITY;
  kernels::scan(rows, 0, 2, query.data(), scores.data());
  CHECK(std::isnan(scores[1]));
}

TEST_CASE("Search: the top-K of a full scan, on any number of threads, batched or not", "[search]") {
  const Catalogue catalogue(100'000, 12, 7);  // three shares of 32,768+ rows: three threads really run
  const std::vector<float> queries = normal_floats(70 * 12, 8);
  std::vector<uint8_t> skip(catalogue.rows, 0);
  for (size_t r = 0; r < catalogue.rows; r += 3) skip[r] = 1;
  for (Precision p : kPrecisions) {
    const EmbeddingRows rows = catalogue.view(p);
    INFO(precision_name(p));
    std::vector<float> scores(rows.rows);
    std::vector<Hit> expected, hits;
    for (size_t q = 0; q < 3; ++q) {
      kernels::scan(rows, 0, rows.rows, queries.data() + q * 12, scores.data());
      kernels::top_k(scores, 50, skip, &expected);
      for (size_t threads : {size_t{1}, size_t{2}, size_t{3}, size_t{0}}) {
        SearchOptions options;
        options.k = 50;
        options.skip = skip;
        options.threads = threads;
        REQUIRE(search(rows, queries.data() + q * 12, options, &hits).is_ok());
        INFO("threads " << threads);
        REQUIRE(same_hits(hits, expected));
      }
    }
    SearchOptions options;
    options.k = 20;
    options.threads = 2;
    std::vector<std::vector<Hit>> batch;
    REQUIRE(search_batch(rows, queries.data(), 70, options, &batch).is_ok());  // 70 queries: more than one pass of 64
    REQUIRE(batch.size() == 70);
    for (size_t q = 0; q < 70; ++q) {
      REQUIRE(search(rows, queries.data() + q * 12, options, &hits).is_ok());
      REQUIRE(same_hits(batch[q], hits));
    }
  }
}

TEST_CASE("Search: ties go to the lower row, k beyond the catalogue, k = 0, an empty catalogue", "[search]") {
  const std::vector<float> data = {1, 0, 2, 0, 1, 0, 2, 0, 0, 1};  // 5 rows x 2
  const EmbeddingRows rows{Precision::kF32, data.data(), nullptr, 5, 2};
  const float query[2] = {1, 0};
  SearchOptions options;
  options.k = 10;
  std::vector<Hit> hits;
  REQUIRE(search(rows, query, options, &hits).is_ok());
  REQUIRE(hits.size() == 5);
  const uint32_t order[5] = {1, 3, 0, 2, 4};
  for (size_t i = 0; i < 5; ++i) CHECK(hits[i].index == order[i]);
  options.k = 0;
  REQUIRE(search(rows, query, options, &hits).is_ok());
  CHECK(hits.empty());
  options.k = 3;
  REQUIRE(search(EmbeddingRows{Precision::kF32, data.data(), nullptr, 0, 2}, query, options, &hits).is_ok());
  CHECK(hits.empty());
}

TEST_CASE("Search: int8 with exact re-scoring keeps at least 99% of the exact top-100", "[search]") {
  // Unit-length rows of 64 dims, as a two-tower catalogue holds: the hardest case for a per-row scale is
  // many rows with close scores, which a random catalogue of 200,000 rows gives.
  const size_t rows = 200'000, dim = 64;
  Catalogue catalogue(rows, dim, 11);
  for (size_t r = 0; r < rows; ++r) {
    double norm = 0;
    for (size_t i = 0; i < dim; ++i) norm += double{catalogue.f32[r * dim + i]} * catalogue.f32[r * dim + i];
    for (size_t i = 0; i < dim; ++i) catalogue.f32[r * dim + i] = static_cast<float>(catalogue.f32[r * dim + i] / std::sqrt(norm));
  }
  quantize_rows_i8(catalogue.f32.data(), rows, dim, catalogue.i8.data(), catalogue.scales.data());
  const std::vector<float> queries = normal_floats(20 * dim, 12);
  size_t kept = 0, kept_without = 0, total = 0;
  for (size_t q = 0; q < 20; ++q) {
    const float* query = queries.data() + q * dim;
    SearchOptions options;
    options.k = 100;
    std::vector<Hit> exact, quantised, rough;
    REQUIRE(search(catalogue.view(Precision::kF32), query, options, &exact).is_ok());
    REQUIRE(search(catalogue.view(Precision::kI8), query, options, &rough).is_ok());
    options.exact = catalogue.f32.data();
    REQUIRE(search(catalogue.view(Precision::kI8), query, options, &quantised).is_ok());
    std::set<uint32_t> truth;
    for (const Hit& h : exact) truth.insert(h.index);
    for (const Hit& h : quantised) kept += truth.count(h.index);
    for (const Hit& h : rough) kept_without += truth.count(h.index);
    total += exact.size();
    // Re-scored hits carry exact scores, in the exact order.
    for (size_t i = 0; i < quantised.size(); ++i)
      REQUIRE(quantised[i].score == kernels::dot(catalogue.f32.data() + size_t{quantised[i].index} * dim, query, dim));
  }
  INFO("kept " << kept << " of " << total << " with re-scoring, " << kept_without << " without");
  CHECK(kept >= total * 99 / 100);
  CHECK(kept >= kept_without);
}
