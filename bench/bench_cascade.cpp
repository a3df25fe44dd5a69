// The user tower (Model::user_embedding) and the whole cascade (Model::recommend) on one file that holds both
// stages: retrieval over 100,000 items x 64 dims (f32 catalogue; towers 64 -> 64, the trainer's defaults but
// output_dim 64), then ranking (CAN, item and category pairs, MLP 200-80, the Amazon models' shape) of the
// 100 retrieved candidates with 50 behaviours, keeping 10, on the caller's thread. Built from the synthetic
// dataset with initial (untrained) weights: the work per call does not depend on the values. The counters
// retrieval_ms and ranking_ms are the stage times recommend() reports, averaged over the calls.
//   build/release/bench/funnel_bench --benchmark_filter='UserEmbedding|Recommend' --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include "dataset.hpp"
#include "export.hpp"
#include "funnel/funnel.hpp"
#include "ranker_model.hpp"
#include "rng.hpp"
#include "synthetic.hpp"
#include "two_tower.hpp"

namespace {

constexpr size_t kBehaviours = 50, kRetrieveK = 100, kK = 10;

struct Cascade {
  std::unique_ptr<funnel::Model> model;
  funnel::Features user;
  std::vector<std::string> behaviours;
};

const Cascade& cascade() {
  static const Cascade fixture = [] {
    funnel::train::SyntheticOptions options;
    options.items = 100'000;
    options.users = 200;
    options.mean_interactions = 10;
    const auto data = funnel::train::load_dataset(
        funnel::train::write_synthetic_dataset("/tmp/funnel-bench-cascade-data", options));
    funnel::train::TrainConfig config;
    config.output_dim = 64;
    const funnel::train::TwoTowerModel two_tower(data, config);
    funnel::train::RankerConfig ranker_config;
    funnel::train::RankerModel ranker(data, ranker_config);
    funnel::train::Rng rng(1);
    ranker.init(rng);
    const funnel::train::RetrievalPart retrieval{two_tower, config};
    const auto bytes = funnel::train::export_funnel(data, &retrieval, &ranker, {});
    Cascade c;
    if (!funnel::Model::load_bytes(bytes.data(), bytes.size(), &c.model)) c.model.reset();
    c.user = data.users.raw[42];
    for (size_t i = 0; i < kBehaviours; ++i) c.behaviours.push_back(data.items.keys[(i * 7919 + 5) % data.items.size()]);
    return c;
  }();
  return fixture;
}

void BM_UserEmbedding(benchmark::State& state) {
  const Cascade& c = cascade();
  if (!c.model) return state.SkipWithError("model does not load");
  std::vector<float> embedding;
  for (auto _ : state) {
    if (!c.model->user_embedding(c.user, &embedding)) state.SkipWithError("user_embedding failed");
    benchmark::DoNotOptimize(embedding.data());
  }
  state.SetLabel(funnel::kernels::isa());
  state.counters["dim"] = static_cast<double>(embedding.size());
}
BENCHMARK(BM_UserEmbedding)->Unit(benchmark::kMicrosecond);

void BM_Recommend(benchmark::State& state) {
  const Cascade& c = cascade();
  if (!c.model) return state.SkipWithError("model does not load");
  funnel::CascadeOptions options;
  options.k = kK;
  options.retrieve_k = kRetrieveK;
  options.behaviours = c.behaviours;
  options.threads = 1;
  funnel::CascadeResult result;
  double retrieval_ms = 0, ranking_ms = 0;
  for (auto _ : state) {
    if (!c.model->recommend(c.user, options, &result)) state.SkipWithError("recommend failed");
    for (const funnel::StageReport& stage : result.stages) (stage.stage == "retrieval" ? retrieval_ms : ranking_ms) += stage.milliseconds;
    benchmark::DoNotOptimize(result.items.data());
  }
  if (result.items.size() != kK || result.stages.size() != 2) state.SkipWithError("unexpected cascade result");
  const double n = static_cast<double>(state.iterations());
  state.counters["retrieval_ms"] = retrieval_ms / n;
  state.counters["ranking_ms"] = ranking_ms / n;
  state.counters["items"] = static_cast<double>(c.model->catalogue_size());
  state.SetLabel(funnel::kernels::isa());
}
BENCHMARK(BM_Recommend)->Unit(benchmark::kMicrosecond);

}  // namespace
