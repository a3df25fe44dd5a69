// Retrieval hot paths: the catalogue scan, top-K and the user tower, on the SDK's own kernels.
//   build/release/bench/funnel_bench --benchmark_min_time=0.2 --benchmark_format=json
#include <benchmark/benchmark.h>

#include "train/export/export.hpp"
#include "funnel/funnel.hpp"
#include "train/core/rng.hpp"
#include "train/data/synthetic.hpp"
#include "train/retrieval/two_tower.hpp"

namespace {

std::vector<float> random_floats(size_t n, uint64_t seed) {
  funnel::train::Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

// One query against rows x 64 dims: bytes read per second is the figure to compare with memory bandwidth.
void BM_ScanF32(benchmark::State& state) {
  const size_t rows = static_cast<size_t>(state.range(0)), dim = 64;
  const auto matrix = random_floats(rows * dim, 1), query = random_floats(dim, 2);
  std::vector<float> scores(rows);
  for (auto _ : state) {
    funnel::kernels::scan_f32(matrix.data(), rows, dim, query.data(), scores.data());
    benchmark::DoNotOptimize(scores.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * rows * dim * sizeof(float)));
  state.SetLabel(funnel::kernels::isa());
}
BENCHMARK(BM_ScanF32)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMicrosecond);

void BM_TopK(benchmark::State& state) {
  const auto scores = random_floats(static_cast<size_t>(state.range(0)), 3);
  std::vector<funnel::Hit> hits;
  for (auto _ : state) {
    funnel::kernels::top_k(scores, 100, {}, &hits);
    benchmark::DoNotOptimize(hits.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_TopK)->Arg(100'000)->Arg(1'000'000)->Unit(benchmark::kMicrosecond);

// The whole retrieve() call on the built-in dataset's model: encode, user tower, scan, top-10.
void BM_Retrieve(benchmark::State& state) {
  static const auto bytes = [] {
    const std::string dir = "/tmp/funnel-bench-data";
    const auto data = funnel::train::load_dataset(funnel::train::write_synthetic_dataset(dir, {}));
    funnel::train::TrainConfig config;
    const funnel::train::TwoTowerModel model(data, config);
    return funnel::train::export_two_tower(data, model, config, {});
  }();
  std::unique_ptr<funnel::Model> model;
  if (!funnel::Model::load_bytes(bytes.data(), bytes.size(), &model)) state.SkipWithError("model does not load");
  funnel::Features user;
  user.set("user_id", "u42").set("age", 31.0).set("region", "r3").set("device", "ios");
  funnel::RetrieveOptions options;
  std::vector<funnel::Recommendation> out;
  for (auto _ : state) {
    if (!model->retrieve(user, options, &out)) state.SkipWithError("retrieve failed");
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_Retrieve)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
