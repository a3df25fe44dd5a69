// The user tower (Model::user_embedding), pre-ranking of 1,000 candidates (Model::prerank) and the whole
// cascade (Model::recommend) on one file that holds all three stages:
//   retrieval over 100,000 items x 64 dims (f32 catalogue; towers 64 -> 64: the trainer's defaults but
//     output_dim 64);
//   pre-ranking: an AutoFAS-shaped student, a DNN without co-action over the item id and category of the
//     candidate and the behaviours, one 64-unit layer (the student bench/study_autofas.py picks at
//     lambda2 = 1e-6);
//   ranking: CAN, item and category pairs, MLP 200-80 (the Amazon models' shape);
// the cascade retrieves 1,000, pre-ranks them to 100, ranks those with 50 behaviours and keeps 10, on the
// caller's thread. Built from the synthetic dataset with initial (untrained) weights: the work per call does
// not depend on the values. BM_Recommend's counters are the stage times recommend() reports, averaged.
//   build/release/bench/funnel_bench --benchmark_filter='UserEmbedding|PreRank|Recommend' --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <map>
#include <string>

#include "train/data/dataset.hpp"
#include "train/export/export.hpp"
#include "funnel/funnel.hpp"
#include "train/ranking/ranker_model.hpp"
#include "train/core/rng.hpp"
#include "train/data/synthetic.hpp"
#include "train/retrieval/two_tower.hpp"

namespace {

constexpr size_t kBehaviours = 50, kRetrieveK = 1000, kPrerankK = 100, kK = 10;

struct Cascade {
  std::unique_ptr<funnel::Model> model;
  funnel::Features user;
  std::vector<std::string> behaviours;
  std::vector<std::string> candidates;  // 1,000 items for the pre-ranking benchmark
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
    funnel::train::RankerConfig student_config;
    student_config.model = "dnn";
    student_config.hidden = {64};
    funnel::train::RankerModel student(data, student_config);
    funnel::train::Rng rng(1);
    ranker.init(rng);
    student.init(rng);
    const funnel::train::RetrievalPart retrieval{two_tower, config};
    const auto bytes = funnel::train::export_funnel(data, &retrieval, &ranker, &student, {});
    Cascade c;
    if (!funnel::Model::load_bytes(bytes.data(), bytes.size(), &c.model)) c.model.reset();
    c.user = data.users.raw[42];
    for (size_t i = 0; i < kBehaviours; ++i) c.behaviours.push_back(data.items.keys[(i * 7919 + 5) % data.items.size()]);
    for (size_t i = 0; i < kRetrieveK; ++i) c.candidates.push_back(data.items.keys[(i * 97 + 11) % data.items.size()]);
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

void BM_PreRank(benchmark::State& state) {
  const Cascade& c = cascade();
  if (!c.model || !c.model->has_pre_ranking()) return state.SkipWithError("model does not load or has no pre-ranking stage");
  std::vector<float> scores;
  for (auto _ : state) {
    if (!c.model->prerank(funnel::Features{}, c.behaviours, c.candidates, &scores)) state.SkipWithError("prerank failed");
    benchmark::DoNotOptimize(scores.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * c.candidates.size()));
  state.SetLabel(funnel::kernels::isa());
}
BENCHMARK(BM_PreRank)->Unit(benchmark::kMicrosecond);

void BM_Recommend(benchmark::State& state) {
  const Cascade& c = cascade();
  if (!c.model) return state.SkipWithError("model does not load");
  funnel::CascadeOptions options;
  options.k = kK;
  options.retrieve_k = kRetrieveK;
  options.prerank_k = kPrerankK;
  options.behaviours = c.behaviours;
  options.threads = 1;
  funnel::CascadeResult result;
  std::map<std::string, double> milliseconds;
  for (auto _ : state) {
    if (!c.model->recommend(c.user, options, &result)) state.SkipWithError("recommend failed");
    for (const funnel::StageReport& stage : result.stages) milliseconds[std::string(stage.stage)] += stage.milliseconds;
    benchmark::DoNotOptimize(result.items.data());
  }
  if (result.items.size() != kK || result.stages.size() != 3) return state.SkipWithError("unexpected cascade result");
  for (const funnel::StageReport& stage : result.stages) {
    state.counters[std::string(stage.stage) + "_ms"] = milliseconds[std::string(stage.stage)] / static_cast<double>(state.iterations());
    state.counters[std::string(stage.stage) + "_scored"] = static_cast<double>(stage.scored);
  }
  state.counters["items"] = static_cast<double>(c.model->catalogue_size());
  state.SetLabel(funnel::kernels::isa());
}
BENCHMARK(BM_Recommend)->Unit(benchmark::kMicrosecond);

}  // namespace
