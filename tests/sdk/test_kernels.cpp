// Every inference kernel on every kernel set this CPU runs, against scalar references, in one run (as ggml's
// test-backend-ops checks every op on every backend): dot products, single-query scans of f32, f16 and
// int8 rows, re-scoring at indices, batched scans, dense layers, the co-action matmul and tanh, each set
// called directly through funnel/kernel_sets.hpp. One test case per set; a set this CPU (or this build)
// cannot run prints "kernel set '<name>' not tested: ..." and ctest reports it as skipped. Top-K, which
// has one implementation, is tested once.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "funnel/kernel_sets.hpp"
#include "funnel/kernels.hpp"
#include "catalogue_fixture.hpp"
#include "funnel/precision.hpp"

using namespace funnel;
using funnel::test::Catalogue;
using funnel::test::kPrecisions;
using funnel::test::normal_floats;
using kernels::KernelSet;

namespace {

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Float sums of n products in any fixed order of the kernels (eight lanes, then a reduction and a tail) are
// within about (n / 8 + 4) roundings of the exact sum, each at most 2^-24 of the summed magnitudes.
double rounding_bound(size_t n, double magnitude) { return (static_cast<double>(n) / 8 + 4) * FLT_EPSILON * magnitude + 1e-30; }

// The scalar reference of an int8 scan, as kernels.hpp specifies it bit for bit: the query rounded to
// q = round(query / step) with step = max|query| / L, L = min(32767, floor((2^31 - 1) / (128 dim))), the
// integer sum exact, the score scales[r] * (float(sum) * step); NaN for a query with a NaN or an infinity.
std::vector<float> int8_scan_reference(const Catalogue& c, const float* query) {
  std::vector<float> out(c.rows);
  float largest = 0;
  for (size_t i = 0; i < c.dim; ++i) {
    if (!std::isfinite(query[i])) return std::vector<float>(c.rows, std::numeric_limits<float>::quiet_NaN());
    largest = std::max(largest, std::fabs(query[i]));
  }
  const float limit = static_cast<float>(std::min<size_t>(32767, size_t{0x7fffffff} / (128 * c.dim)));
  std::vector<int32_t> q(c.dim, 0);
  float step = 0;
  if (largest > 0) {
    const float inverse = limit / largest;
    for (size_t i = 0; i < c.dim; ++i) q[i] = static_cast<int32_t>(std::clamp(std::nearbyint(query[i] * inverse), -limit, limit));
    step = largest / limit;
  }
  for (size_t r = 0; r < c.rows; ++r) {
    int64_t sum = 0;
    for (size_t i = 0; i < c.dim; ++i) sum += int64_t{c.i8[r * c.dim + i]} * q[i];
    out[r] = c.scales[r] * (static_cast<float>(sum) * step);
  }
  return out;
}

// |score - decoded row . query| allowed for a single-query scan: rounding, and for int8 rows the query's
// rounding to 16-bit steps (kernels.hpp).
double scan_bound(const Catalogue& c, Precision p, size_t r, const float* query) {
  double magnitude = 0, row_norm1 = 0, largest = 0;
  for (size_t i = 0; i < c.dim; ++i) {
    magnitude += std::fabs(c.decoded(p, r, i) * query[i]);
    row_norm1 += std::fabs(c.decoded(p, r, i));
    largest = std::max(largest, double{std::fabs(query[i])});
  }
  const double step = p == Precision::kI8 ? largest / std::min<double>(32767, std::floor(2147483647.0 / (128.0 * c.dim))) : 0;
  return rounding_bound(c.dim, magnitude + step * row_norm1) + step / 2 * row_norm1;
}

double reference_dot(const Catalogue& c, Precision p, size_t r, const float* query) {
  double sum = 0;
  for (size_t i = 0; i < c.dim; ++i) sum += c.decoded(p, r, i) * query[i];
  return sum;
}

void check_dot_and_scan_f32(const KernelSet& k) {
  for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{16}, size_t{17}, size_t{33}, size_t{100}, size_t{1000}}) {
    const std::vector<float> a = normal_floats(n, static_cast<uint32_t>(n)), b = normal_floats(n, static_cast<uint32_t>(n + 1));
    double expected = 0, magnitude = 0;
    for (size_t i = 0; i < n; ++i) {
      expected += double{a[i]} * b[i];
      magnitude += std::fabs(double{a[i]} * b[i]);
    }
    INFO("dot, n = " << n);
    CHECK(std::fabs(k.dot(a.data(), b.data(), n) - expected) <= rounding_bound(n, magnitude));
  }
  // scan_f32 scores each row exactly as dot() does.
  for (size_t rows : {size_t{1}, size_t{7}, size_t{8}, size_t{37}}) {
    for (size_t dim : {size_t{1}, size_t{8}, size_t{19}, size_t{64}}) {
      const std::vector<float> matrix = normal_floats(rows * dim, 3), query = normal_floats(dim, 4);
      std::vector<float> scores(rows);
      k.scan_f32(matrix.data(), rows, dim, query.data(), scores.data());
      INFO("scan_f32, " << rows << " rows of " << dim);
      for (size_t r = 0; r < rows; ++r) REQUIRE(same_bits(scores[r], k.dot(matrix.data() + r * dim, query.data(), dim)));
    }
  }
}

void check_scans(const KernelSet& k) {
  // Dimensions around the kernels' blocks (8 lanes, 16 int8 lanes), past 512 (int8 queries round to fewer
  // levels) and past 4,096; 37 rows: blocks of 4 and 8 and a tail.
  for (size_t dim : {size_t{1}, size_t{3}, size_t{8}, size_t{9}, size_t{16}, size_t{17}, size_t{64}, size_t{100}, size_t{600}, size_t{4097}}) {
    const Catalogue catalogue(37, dim, static_cast<uint32_t>(dim));
    std::vector<float> queries = normal_floats(3 * dim, static_cast<uint32_t>(dim + 99));
    std::fill(queries.begin() + 2 * dim, queries.end(), 0.0f);  // the third query is zero
    for (Precision p : kPrecisions) {
      const EmbeddingRows rows = catalogue.view(p);
      for (size_t q = 0; q < 3; ++q) {
        INFO("scan, dim " << dim << ", " << precision_name(p) << ", query " << q);
        const float* query = queries.data() + q * dim;
        std::vector<float> scores(rows.rows), part(rows.rows - 6);
        k.scan(rows, 0, rows.rows, query, scores.data());
        if (p == Precision::kI8) {
          const std::vector<float> expected = int8_scan_reference(catalogue, query);
          for (size_t r = 0; r < rows.rows; ++r) REQUIRE(same_bits(scores[r], expected[r]));
        } else if (p == Precision::kF32) {
          std::vector<float> expected(rows.rows);
          k.scan_f32(catalogue.f32.data(), rows.rows, dim, query, expected.data());
          for (size_t r = 0; r < rows.rows; ++r) REQUIRE(same_bits(scores[r], expected[r]));
        }
        for (size_t r = 0; r < rows.rows; ++r)
          REQUIRE(std::fabs(scores[r] - reference_dot(catalogue, p, r, query)) <= scan_bound(catalogue, p, r, query));
        // A sub-range scores its rows as the whole scan does, and so does re-scoring at indices (repeats too).
        k.scan(rows, 5, rows.rows - 1, query, part.data());
        for (size_t r = 5; r + 1 < rows.rows; ++r) REQUIRE(same_bits(part[r - 5], scores[r]));
        const std::vector<uint32_t> indices = {36, 0, 7, 7, 8, 15, 16, 1, 30};
        std::vector<float> at(indices.size());
        k.scan_rows_at(rows, indices.data(), indices.size(), query, at.data());
        for (size_t i = 0; i < indices.size(); ++i) REQUIRE(same_bits(at[i], scores[indices[i]]));
      }
    }
  }
  // int8 rows against a query with a NaN or an infinity: NaN, as the reference says.
  const Catalogue catalogue(9, 24, 5);
  std::vector<float> query = normal_floats(24, 6), scores(9);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    query[11] = bad;
    k.scan(catalogue.view(Precision::kI8), 0, 9, query.data(), scores.data());
    for (float s : scores) CHECK(std::isnan(s));
  }
}

// Returns whether some int8 batch ran in bytes (its queries rounded to 8 bits).
bool check_batches(const KernelSet& k) {
  bool bytes_seen = false;
  // Batches around the tiles (16 and 32 queries, 4, 6 and 12 rows) and dimensions around the byte groups
  // (multiples of 4, and past 4,096 where int8 batches go back to floats).
  for (size_t dim : {size_t{1}, size_t{4}, size_t{7}, size_t{16}, size_t{33}, size_t{64}, size_t{4100}}) {
    const Catalogue catalogue(29, dim, static_cast<uint32_t>(dim + 7));
    for (size_t count : {size_t{1}, size_t{5}, size_t{16}, size_t{17}, size_t{33}}) {
      if (dim > 1000 && count > 5) continue;  // the large dimension once, to keep the run short
      const std::vector<float> queries = normal_floats(count * dim, static_cast<uint32_t>(count * 31 + dim));
      for (Precision p : kPrecisions) {
        INFO("scan_batch, dim " << dim << ", " << count << " queries, " << precision_name(p));
        const EmbeddingRows rows = catalogue.view(p);
        kernels::BatchQueries batch;
        k.prepare_batch(rows, queries.data(), count, &batch);
        REQUIRE(batch.count == count);
        REQUIRE(batch.dim == dim);
        // With the queries rounded to bytes, a score is within step / 2 * scale * sum |row| of the decoded
        // product, step = max|query| / 127 (kernels.hpp); else only rounding separates them.
        const bool in_bytes = !batch.bytes.empty();
        bytes_seen = bytes_seen || in_bytes;
        std::vector<float> out(rows.rows * count);
        k.scan_batch(rows, 0, rows.rows, batch, out.data());
        for (size_t q = 0; q < count; ++q) {
          const float* query = queries.data() + q * dim;
          double largest = 0;
          for (size_t i = 0; i < dim; ++i) largest = std::max(largest, double{std::fabs(query[i])});
          const double step = in_bytes ? largest / 127 : 0;
          for (size_t r = 0; r < rows.rows; ++r) {
            double magnitude = 0, row_norm1 = 0;
            for (size_t i = 0; i < dim; ++i) {
              magnitude += std::fabs(catalogue.decoded(p, r, i) * query[i]);
              row_norm1 += std::fabs(catalogue.decoded(p, r, i));
            }
            // Each pair's sum runs over the dimensions one after another: dim roundings, then the scale's.
            const double bound = (dim + 4) * FLT_EPSILON * (magnitude + step * row_norm1) + step / 2 * row_norm1 + 1e-30;
            REQUIRE(std::fabs(out[r * count + q] - reference_dot(catalogue, p, r, query)) <= bound);
          }
        }
        // A score depends neither on the rows scanned with it nor on the batch: rows 3-20 alone, the last
        // query alone.
        std::vector<float> part((20 - 3) * count), alone(rows.rows);
        k.scan_batch(rows, 3, 20, batch, part.data());
        for (size_t i = 0; i < part.size(); ++i) REQUIRE(same_bits(part[i], out[3 * count + i]));
        kernels::BatchQueries single;
        k.prepare_batch(rows, queries.data() + (count - 1) * dim, 1, &single);
        k.scan_batch(rows, 0, rows.rows, single, alone.data());
        for (size_t r = 0; r < rows.rows; ++r) REQUIRE(same_bits(alone[r], out[r * count + count - 1]));
      }
    }
  }
  return bytes_seen;
}

void check_dense_and_matmul(const KernelSet& k) {
  for (size_t out : {size_t{1}, size_t{3}, size_t{8}, size_t{17}}) {
    for (size_t in : {size_t{1}, size_t{5}, size_t{8}, size_t{9}, size_t{33}, size_t{100}}) {
      const std::vector<float> weight = normal_floats(out * in, 11), bias = normal_floats(out, 12), x = normal_floats(9 * in, 13);
      std::vector<float> y(out), batch(9 * out);
      k.dense_forward_batch(weight.data(), bias.data(), out, in, x.data(), 9, batch.data());
      for (size_t row = 0; row < 9; ++row) {
        INFO("dense layer [" << out << ", " << in << "], row " << row);
        k.dense_forward(weight.data(), bias.data(), out, in, x.data() + row * in, y.data());
        for (size_t o = 0; o < out; ++o) {
          double expected = bias[o], magnitude = std::fabs(bias[o]);
          for (size_t i = 0; i < in; ++i) {
            expected += double{weight[o * in + i]} * x[row * in + i];
            magnitude += std::fabs(double{weight[o * in + i]} * x[row * in + i]);
          }
          REQUIRE(std::fabs(y[o] - expected) <= rounding_bound(in + 1, magnitude));
          REQUIRE(same_bits(batch[row * out + o], y[o]));  // a row's result does not depend on its batch
        }
      }
    }
  }
  // The co-action micro-MLP's widths (8 and 16 have kernels of their own) and others.
  for (size_t out : {size_t{1}, size_t{5}, size_t{8}, size_t{16}, size_t{24}}) {
    for (size_t rows : {size_t{1}, size_t{3}, size_t{4}, size_t{9}}) {
      const size_t in = 7;
      const std::vector<float> x = normal_floats(rows * in, 21), w = normal_floats(in * out, 22);
      std::vector<float> y(rows * out);
      k.matmul(x.data(), rows, in, w.data(), out, y.data());
      INFO("matmul, " << rows << " x " << in << " by " << in << " x " << out);
      for (size_t r = 0; r < rows; ++r)
        for (size_t o = 0; o < out; ++o) {
          double expected = 0, magnitude = 0;
          for (size_t i = 0; i < in; ++i) {
            expected += double{x[r * in + i]} * w[i * out + o];
            magnitude += std::fabs(double{x[r * in + i]} * w[i * out + o]);
          }
          REQUIRE(std::fabs(y[r * out + o] - expected) <= (in + 1) * FLT_EPSILON * magnitude + 1e-30);
        }
    }
  }
}

void check_tanh(const KernelSet& k) {
  std::vector<float> x;
  for (float v = -12.0f; v <= 12.0f; v += 0.00137f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-8f, 0.625f, -0.625f, 0.62499994f, 9.0f, 50.0f, -50.0f, 1e30f}) x.push_back(v);
  std::vector<float> y = x;
  k.tanh_inplace(y.data(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double exact = std::tanh(static_cast<double>(x[i]));
    const double ulp = std::max(std::fabs(std::nextafter(static_cast<float>(exact), 2.0f) - static_cast<float>(exact)), 1e-45f);
    INFO("tanh(" << x[i] << ") = " << y[i] << ", exactly " << exact);
    REQUIRE(std::fabs(y[i] - exact) <= 2.0 * ulp);
  }
}

const KernelSet* find_set(const char* name) {
  for (const KernelSet& set : kernels::kernel_sets())
    if (std::strcmp(set.name, name) == 0) return &set;
  return nullptr;
}

// Every kernel of `set`, or, where this CPU or this build cannot run it, a line naming the set and why
// (ctest's SKIP_REGULAR_EXPRESSION for this binary matches "not tested:" and reports the test as skipped).
void check_kernel_set(const KernelSet* set, const char* name, const char* missing) {
  if (!set || !set->available) {
    if (set)
      std::printf("kernel set '%s' not tested: it needs %s, and this CPU lacks some of that\n", name, set->needs);
    else
      std::printf("kernel set '%s' not tested: %s\n", name, missing);
    WARN("kernel set '" << name << "' not tested");
    return;
  }
  INFO("kernel set '" << set->name << "'");
  check_dot_and_scan_f32(*set);
  check_scans(*set);
  const bool bytes_seen = check_batches(*set);
  // Only the AVX512-VNNI set rounds int8 batches to bytes; that it did is what shows the byte kernel ran.
  CHECK(bytes_seen == (std::strstr(set->name, "vnni") != nullptr));
  check_dense_and_matmul(*set);
  check_tanh(*set);
}

constexpr const char* kX86Only = "its kernels are built for x86-64 only";

}  // namespace

TEST_CASE("Kernel set generic or neon (the portable one): every kernel against scalar references", "[kernels]") {
  const KernelSet& portable = kernels::kernel_sets()[0];
  check_kernel_set(&portable, portable.name, "");
}

TEST_CASE("Kernel set avx2+fma: every kernel against scalar references", "[kernels]") {
  check_kernel_set(find_set("avx2+fma"), "avx2+fma", kX86Only);
}

TEST_CASE("Kernel set avx2+fma, avx512 batches: every kernel against scalar references", "[kernels]") {
  check_kernel_set(find_set("avx2+fma, avx512 batches"), "avx2+fma, avx512 batches", kX86Only);
}

TEST_CASE("Kernel set avx2+fma, avx512-vnni batches: every kernel against scalar references", "[kernels]") {
  check_kernel_set(find_set("avx2+fma, avx512-vnni batches"), "avx2+fma, avx512-vnni batches", kX86Only);
}

TEST_CASE("Kernel sets: each has its test case above, and the SDK runs the best available (or FUNNEL_KERNELS' cap)", "[kernels]") {
  const auto sets = kernels::kernel_sets();
  REQUIRE(!sets.empty());
  CHECK(sets[0].available);
  const std::vector<std::string> tested = {"generic", "neon", "avx2+fma", "avx2+fma, avx512 batches", "avx2+fma, avx512-vnni batches"};
  size_t best = 0;
  bool unavailable_before = false;
  for (size_t i = 0; i < sets.size(); ++i) {
    INFO("kernel set '" << sets[i].name << "'");
    CHECK(std::find(tested.begin(), tested.end(), sets[i].name) != tested.end());
    if (!sets[i].available) {
      unavailable_before = true;
      continue;
    }
    CHECK_FALSE(unavailable_before);  // each set needs more than the one before, so the available ones come first
    best = i;
  }
  const char* cap = std::getenv("FUNNEL_KERNELS");
  if (cap && std::strcmp(cap, "generic") == 0) best = 0;
  if (cap && std::strcmp(cap, "avx2") == 0) best = std::min<size_t>(best, 1);
  CHECK(std::string(kernels::isa()) == sets[best].name);
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
  std::mt19937 engine(9);
  std::vector<float> scores(5000);
  for (float& s : scores) s = static_cast<float>(engine() % 200);  // many ties
  std::vector<uint32_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return scores[a] > scores[b]; });
  std::vector<Hit> hits;
  kernels::top_k(scores, 50, {}, &hits);
  for (size_t i = 0; i < hits.size(); ++i) CHECK(hits[i].index == order[i]);
}
