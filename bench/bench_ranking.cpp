// Ranking hot paths: one user against 1,000 candidates with 50 behaviours, CAN against the plain DNN of
// the same MLP width, through Model::rank (keys in, probabilities out); and against the first 100 of those
// candidates (BM_Rank/can_100, BM_Rank/dnn_100: the cascade's ranking stage). The two model files are also
// written to build/bench/, with the request, so that bench/bench_ranking_wasm.mjs scores the same files
// in WebAssembly.
//   build/release/bench/funnel_bench --benchmark_filter=Rank --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <filesystem>
#include <map>
#include <span>

#include "train/core/atomic_file.hpp"
#include "train/data/ctr_data.hpp"
#include "train/export/export.hpp"
#include "funnel/funnel.hpp"
#include "train/ranking/ranker_model.hpp"
#include "train/data/synthetic.hpp"

namespace {

constexpr size_t kCandidates = 1000, kBehaviours = 50;

struct Fixture {
  std::vector<uint8_t> bytes;
  std::vector<std::string> candidates, behaviours;
};

// The built-in dataset with 2,000 items, the Amazon models' shape (item id and category, each with its
// own co-action pair of 3 orders, MLP 200-80), initialised as training starts.
const Fixture& fixture(const std::string& model) {
  static std::map<std::string, Fixture> cache;
  if (auto it = cache.find(model); it != cache.end()) return it->second;
  funnel::train::SyntheticOptions options;
  options.items = 2000;
  const std::string dir = "/tmp/funnel-bench-ranking-data";
  static const auto data = funnel::train::load_dataset(funnel::train::write_synthetic_dataset(dir, options));
  funnel::train::RankerConfig config;
  config.model = model;
  funnel::train::RankerModel ranker(data, config);
  funnel::train::Rng rng(1);
  ranker.init(rng);
  Fixture f;
  f.bytes = funnel::train::export_ranker(data, ranker, {});
  std::filesystem::create_directories("build/bench");
  funnel::train::write_file_atomically("build/bench/ranker-" + model + ".funnel", f.bytes);
  for (size_t i = 0; i < kCandidates; ++i) f.candidates.push_back(data.items.keys[(i * 7) % data.items.size()]);
  for (size_t i = 0; i < kBehaviours; ++i) f.behaviours.push_back(data.items.keys[(i * 13 + 5) % data.items.size()]);
  std::string request;
  const auto list = [&request](const std::vector<std::string>& keys) {
    for (size_t i = 0; i < keys.size(); ++i) request += (i ? ",\"" : "\"") + keys[i] + "\"";
  };
  request += "{\"behaviours\": [";
  list(f.behaviours);
  request += "], \"candidates\": [";
  list(f.candidates);
  request += "]}\n";
  funnel::train::write_file_atomically("build/bench/ranker-request.json", request);
  return cache.emplace(model, std::move(f)).first->second;
}

void BM_Rank(benchmark::State& state, const std::string& model_name, size_t count) {
  const Fixture& f = fixture(model_name);
  std::unique_ptr<funnel::Model> model;
  if (!funnel::Model::load_bytes(f.bytes.data(), f.bytes.size(), &model)) state.SkipWithError("model does not load");
  const std::span<const std::string> candidates(f.candidates.data(), count);
  std::vector<float> probabilities;
  for (auto _ : state) {
    if (!model->rank(funnel::Features{}, f.behaviours, candidates, &probabilities)) state.SkipWithError("rank failed");
    benchmark::DoNotOptimize(probabilities.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * count));
  state.SetLabel(funnel::kernels::isa());
}
BENCHMARK_CAPTURE(BM_Rank, can, std::string("can"), kCandidates)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Rank, dnn, std::string("dnn"), kCandidates)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Rank, can_100, std::string("can"), size_t{100})->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Rank, dnn_100, std::string("dnn"), size_t{100})->Unit(benchmark::kMicrosecond);

}  // namespace
