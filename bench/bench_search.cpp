// Exact top-K (k = 100) through funnel::search and funnel::search_batch over 100K and 1M rows x 64 dims in
// f32, f16 and int8 (int8 with and without exact re-scoring against the f32 rows), beside FAISS's
// IndexFlatIP on the same vectors, and the machine's memory read bandwidth to read the scans against.
//
//   BM_MemoryBandwidth/MiB:1024/threads:T/prefetch:P   sums a 1 GiB buffer (3.4x the 300 MB L3 this VM reports)
//                                  with 8 independent 8-float accumulators per thread; bytes/s is the read
//                                  bandwidth. prefetch:1 also asks for the data 4 KB ahead, as the scans do.
//                                  MiB:256 streams the first 256 MiB only, the size of the 1M x 64 f32
//                                  catalogue, to show how much of such a working set the L3 serves.
//   BM_Search/<precision>/rows:N/threads:T        one query per call (search, SearchOptions::threads = T).
//   BM_SearchBatch/<precision>/rows:N/threads:T   64 queries per call (search_batch).
//   BM_FaissFlatIP/openblas:CORE/rows:N/batch:B   IndexFlatIP::search of B queries (1 or 64). FAISS scans one
//                                  query on one thread (Debian's libfaiss is built for SSE only); 64 go through
//                                  BLAS sgemm. CORE is the kernel set OpenBLAS runs (openblas_get_corename;
//                                  "none" for another BLAS), which OPENBLAS_CORETYPE chooses: OpenBLAS 0.3.21
//                                  does not recognise this VM's CPU and falls back to "Prescott" (SSE3).
//                                  OMP_NUM_THREADS and the BLAS library loaded are in the label.
// bytes_per_second is the catalogue's bytes (rows x 64 x element size, plus the int8 scales) per call over the
// call's wall time; the re-scoring's few hundred exact rows are not counted. items_per_second is queries per
// second. Every time is wall-clock (UseRealTime): the threads run inside each call.
// Rows and queries are L2-normalised Gaussian vectors (as the towers' outputs are); 64 different queries
// take turns.
//   build/release/bench/funnel_bench --benchmark_filter='Bandwidth|Search|Faiss' --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "funnel/funnel.hpp"

#if defined(FUNNEL_BENCH_FAISS)
#include <dlfcn.h>
#include <faiss/IndexFlat.h>
#include <omp.h>
#endif

namespace {

constexpr size_t kDim = 64, kK = 100, kQueries = 64;

// --- memory read bandwidth -----------------------------------------------------------------------------

constexpr int64_t kBandwidthMiB = 1024;
constexpr size_t kBandwidthBytes = size_t{kBandwidthMiB} << 20;
typedef float Float8 __attribute__((vector_size(32)));

const std::vector<float>& bandwidth_buffer() {
  static const std::vector<float> buffer(kBandwidthBytes / sizeof(float), 1.0f);  // every page written once
  return buffer;
}

// The sum of n floats (n a multiple of 64) with 8 independent accumulators of 8 floats; with `prefetch`,
// asking for the data 4 KB ahead as the SDK's scans do (software prefetch raised the scans' own rate by
// up to half on this VM, so the bandwidth they are compared with is measured both ways).
template <bool prefetch>
float sum_floats(const float* p, size_t n) {
  Float8 acc[8] = {};
  for (size_t i = 0; i < n; i += 64) {
    if constexpr (prefetch)
      for (size_t b = 0; b < 256; b += 64) __builtin_prefetch(reinterpret_cast<const char*>(p + i) + 4096 + b);
    for (size_t j = 0; j < 8; ++j) {
      Float8 v;
      std::memcpy(&v, p + i + 8 * j, sizeof v);
      acc[j] += v;
    }
  }
  Float8 total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  float s = 0;
  for (size_t j = 0; j < 8; ++j) s += total[j];
  return s;
}

void BM_MemoryBandwidth(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0)) << 20, threads = static_cast<size_t>(state.range(1));
  const auto sum = state.range(2) ? sum_floats<true> : sum_floats<false>;
  const std::vector<float>& buffer = bandwidth_buffer();
  const size_t share = bytes / sizeof(float) / threads;
  std::vector<float> sums(threads);
  for (auto _ : state) {
    std::vector<std::thread> workers;
    for (size_t t = 1; t < threads; ++t)
      workers.emplace_back([&, t] { sums[t] = sum(buffer.data() + t * share, share); });
    sums[0] = sum(buffer.data(), share);
    for (std::thread& w : workers) w.join();
    benchmark::DoNotOptimize(sums.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_MemoryBandwidth)
    ->ArgNames({"MiB", "threads", "prefetch"})
    ->Args({kBandwidthMiB, 1, 0})
    ->Args({kBandwidthMiB, 2, 0})
    ->Args({kBandwidthMiB, 1, 1})
    ->Args({kBandwidthMiB, 2, 1})
    ->Args({256, 1, 0})
    ->Args({256, 2, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// --- the catalogues ------------------------------------------------------------------------------------

void random_unit_rows(size_t rows, uint64_t seed, std::vector<float>* out) {
  // The SDK's benchmark takes no trainer header: the standard library's generator is enough for random rows.
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  out->resize(rows * kDim);
  for (size_t r = 0; r < rows; ++r) {
    float* row = out->data() + r * kDim;
    double norm = 0;
    for (size_t i = 0; i < kDim; ++i) {
      row[i] = normal(rng);
      norm += double{row[i]} * row[i];
    }
    const float scale = static_cast<float>(1.0 / std::sqrt(norm));
    for (size_t i = 0; i < kDim; ++i) row[i] *= scale;
  }
}

struct Catalogue {
  size_t rows = 0;
  std::vector<float> f32;
  std::vector<uint16_t> f16;
  std::vector<int8_t> i8;
  std::vector<float> scales;
  std::vector<float> queries;  // kQueries x kDim

  funnel::EmbeddingRows view(funnel::Precision precision) const {
    funnel::EmbeddingRows v;
    v.precision = precision;
    v.rows = rows;
    v.dim = kDim;
    switch (precision) {
      case funnel::Precision::kF16: v.data = f16.data(); break;
      case funnel::Precision::kI8:
        v.data = i8.data();
        v.scales = scales.data();
        break;
      default: v.data = f32.data(); break;
    }
    return v;
  }
  // The bytes one scan reads.
  size_t scan_bytes(funnel::Precision precision) const {
    switch (precision) {
      case funnel::Precision::kF16: return rows * kDim * sizeof(uint16_t);
      case funnel::Precision::kI8: return rows * (kDim * sizeof(int8_t) + sizeof(float));
      default: return rows * kDim * sizeof(float);
    }
  }
};

// The same rows for every benchmark of a size: f32, then f16 and int8 built from them by the SDK's own
// conversions (what the exporter writes).
const Catalogue& catalogue(size_t rows) {
  static std::map<size_t, std::unique_ptr<Catalogue>> cache;
  std::unique_ptr<Catalogue>& c = cache[rows];
  if (c) return *c;
  c = std::make_unique<Catalogue>();
  c->rows = rows;
  random_unit_rows(rows, 1, &c->f32);
  c->f16.resize(rows * kDim);
  funnel::floats_to_halves(c->f32.data(), rows * kDim, c->f16.data());
  c->i8.resize(rows * kDim);
  c->scales.resize(rows);
  funnel::quantize_rows_i8(c->f32.data(), rows, kDim, c->i8.data(), c->scales.data());
  random_unit_rows(kQueries, 2, &c->queries);
  return *c;
}

// --- the SDK's search ----------------------------------------------------------------------------------

void BM_Search(benchmark::State& state, funnel::Precision precision, bool exact) {
  const size_t rows = static_cast<size_t>(state.range(0)), threads = static_cast<size_t>(state.range(1));
  const Catalogue& c = catalogue(rows);
  const funnel::EmbeddingRows view = c.view(precision);
  funnel::SearchOptions options;
  options.k = kK;
  options.threads = threads;
  if (exact) options.exact = c.f32.data();
  std::vector<funnel::Hit> hits;
  size_t q = 0;
  bool ok = true;
  for (auto _ : state) {
    ok &= funnel::search(view, c.queries.data() + (q++ % kQueries) * kDim, options, &hits).is_ok();
    benchmark::DoNotOptimize(hits.data());
  }
  if (!ok || hits.size() != kK) state.SkipWithError("search failed or gave the wrong number of hits");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * c.scan_bytes(precision)));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
  state.SetLabel(funnel::kernels::isa());
}

void BM_SearchBatch(benchmark::State& state, funnel::Precision precision, bool exact) {
  const size_t rows = static_cast<size_t>(state.range(0)), threads = static_cast<size_t>(state.range(1));
  const Catalogue& c = catalogue(rows);
  const funnel::EmbeddingRows view = c.view(precision);
  funnel::SearchOptions options;
  options.k = kK;
  options.threads = threads;
  if (exact) options.exact = c.f32.data();
  std::vector<std::vector<funnel::Hit>> hits;
  bool ok = true;
  for (auto _ : state) {
    ok &= funnel::search_batch(view, c.queries.data(), kQueries, options, &hits).is_ok();
    benchmark::DoNotOptimize(hits.data());
  }
  if (!ok || hits.size() != kQueries || hits[0].size() != kK) state.SkipWithError("search failed or gave the wrong number of hits");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * c.scan_bytes(precision)));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kQueries));
  state.SetLabel(funnel::kernels::isa());
}

void search_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"rows", "threads"});
  for (int64_t rows : {100'000, 1'000'000})
    for (int64_t threads : {1, 2}) b->Args({rows, threads});
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}
void batch_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"rows", "threads"});
  for (int64_t rows : {100'000, 1'000'000}) b->Args({rows, 2});
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}

using funnel::Precision;
BENCHMARK_CAPTURE(BM_Search, f32, Precision::kF32, false)->Apply(search_args);
BENCHMARK_CAPTURE(BM_Search, f16, Precision::kF16, false)->Apply(search_args);
BENCHMARK_CAPTURE(BM_Search, int8, Precision::kI8, false)->Apply(search_args);
BENCHMARK_CAPTURE(BM_Search, int8_exact, Precision::kI8, true)->Apply(search_args);
BENCHMARK_CAPTURE(BM_SearchBatch, f32, Precision::kF32, false)->Apply(batch_args);
BENCHMARK_CAPTURE(BM_SearchBatch, f16, Precision::kF16, false)->Apply(batch_args);
BENCHMARK_CAPTURE(BM_SearchBatch, int8, Precision::kI8, false)->Apply(batch_args);
BENCHMARK_CAPTURE(BM_SearchBatch, int8_exact, Precision::kI8, true)->Apply(batch_args);

// --- FAISS -----------------------------------------------------------------------------------------------

#if defined(FUNNEL_BENCH_FAISS)
// The BLAS library this process loaded (the file behind libblas.so.3), from /proc/self/maps.
std::string loaded_blas() {
  std::FILE* maps = std::fopen("/proc/self/maps", "r");
  if (!maps) return "?";
  char line[4096];
  std::string found = "?";
  while (std::fgets(line, sizeof line, maps)) {
    const char* path = std::strchr(line, '/');
    if (path && (std::strstr(path, "blas") || std::strstr(path, "BLAS"))) {
      found = path;
      while (!found.empty() && (found.back() == '\n' || found.back() == ' ')) found.pop_back();
      break;
    }
  }
  std::fclose(maps);
  return found;
}

const faiss::IndexFlatIP& faiss_index(size_t rows) {
  static std::map<size_t, std::unique_ptr<faiss::IndexFlatIP>> cache;
  std::unique_ptr<faiss::IndexFlatIP>& index = cache[rows];
  if (!index) {
    index = std::make_unique<faiss::IndexFlatIP>(static_cast<faiss::Index::idx_t>(kDim));
    index->add(static_cast<faiss::Index::idx_t>(rows), catalogue(rows).f32.data());
  }
  return *index;
}

// OpenBLAS's kernel set ("Haswell", "SkylakeX", "Prescott", ...), or "none" when the BLAS is not OpenBLAS.
std::string openblas_core() {
  using Corename = char* (*)();
  const auto corename = reinterpret_cast<Corename>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  std::string core = corename ? corename() : "none";
  for (char& c : core)
    if (c == '/' || c == ' ') c = '_';
  return core;
}

void BM_FaissFlatIP(benchmark::State& state, size_t rows, size_t batch) {
  const Catalogue& c = catalogue(rows);
  const faiss::IndexFlatIP& index = faiss_index(rows);
  std::vector<float> distances(batch * kK);
  std::vector<faiss::Index::idx_t> labels(batch * kK);
  size_t q = 0;
  for (auto _ : state) {
    const float* queries = batch == kQueries ? c.queries.data() : c.queries.data() + (q++ % kQueries) * kDim;
    index.search(static_cast<faiss::Index::idx_t>(batch), queries, static_cast<faiss::Index::idx_t>(kK), distances.data(),
                 labels.data());
    benchmark::DoNotOptimize(labels.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * c.scan_bytes(funnel::Precision::kF32)));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
  state.SetLabel("omp_threads=" + std::to_string(omp_get_max_threads()) + " blas=" + loaded_blas());
}
// Registered by hand so that the name carries the OpenBLAS kernel set (runs with different OPENBLAS_CORETYPE
// values then stay apart in pooled results).
const bool faiss_registered = [] {
  const std::string core = openblas_core();
  for (const size_t batch : {size_t{1}, kQueries})
    for (const size_t rows : {size_t{100'000}, size_t{1'000'000}}) {
      const std::string name = "BM_FaissFlatIP/openblas:" + core + "/rows:" + std::to_string(rows) + "/batch:" + std::to_string(batch);
      benchmark::RegisterBenchmark(name.c_str(), BM_FaissFlatIP, rows, batch)->Unit(benchmark::kMicrosecond)->UseRealTime();
    }
  return true;
}();
#endif

}  // namespace
