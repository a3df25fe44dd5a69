// The whole funnel from one command's library call (train_funnel): three trained stages in one file that
// answers as its stage files do, a resumed run that reuses them, and the cascade evaluation's rows.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "funnel/layer_latency.hpp"
#include "funnel/model.hpp"
#include "support.hpp"
#include "train/core/errors.hpp"
#include "train/data/split.hpp"
#include "train/pipeline/cascade_evaluation.hpp"
#include "train/pipeline/funnel_config.hpp"
#include "train/pipeline/funnel_training.hpp"

using namespace funnel;
using namespace funnel::train;
using Catch::Matchers::Contains;

namespace {

// A small, fast funnel on the synthetic dataset, with a latency table measured on a small grid.
FunnelConfig small_funnel(const funnel::test::TempDir& dir) {
  FunnelConfig config;
  config.retrieval.epochs = 2;
  config.retrieval.threads = 1;
  RankerConfig& ranking = config.pre_ranking.teacher;
  ranking.epochs = 1;
  ranking.threads = 1;
  ranking.max_history = 10;
  ranking.hidden = {16};
  ranking.user_features = {"age", "region"};
  config.pre_ranking.operators = {0, 8, 16};
  config.pre_ranking.student_epochs = 1;
  LayerLatencyOptions grid;
  grid.inputs = {8, 16, 32, 64, 128};
  grid.outputs = {1, 8, 16};
  grid.repeats = 1;
  grid.min_sample_microseconds = 50;
  LayerLatencyTable table;
  REQUIRE(measure_layer_latency(grid, &table).is_ok());
  config.pre_ranking.latency_table = dir.write("latency.json", layer_latency_json(table));
  return config;
}

std::unique_ptr<Model> load(std::span<const uint8_t> bytes) {
  std::unique_ptr<Model> model;
  REQUIRE(Model::load_bytes(bytes.data(), bytes.size(), &model).is_ok());
  return model;
}

std::unique_ptr<Model> load(const std::string& path) {
  std::unique_ptr<Model> model;
  REQUIRE(Model::load_file(path, &model).is_ok());
  return model;
}

}  // namespace

TEST_CASE("Funnel config: one section per stage, every field defaulted, mistakes named", "[funnel][config]") {
  const FunnelConfig defaults = funnel_config_from_json(nlohmann::json::object(), "test");
  CHECK(funnel_config_to_json(defaults) == funnel_config_to_json(FunnelConfig{}));
  const FunnelConfig set = funnel_config_from_json({{"retrieval", {{"epochs", 3}}}, {"ranking", {{"model", "dnn"}}},
                                                    {"pre_ranking", {{"mixops", 2}}}},
                                                   "test");
  CHECK(set.retrieval.epochs == 3);
  CHECK(set.pre_ranking.teacher.model == "dnn");
  CHECK(set.pre_ranking.mixops == 2);
  CHECK(funnel_config_from_json(funnel_config_to_json(set), "again").pre_ranking.mixops == 2);
  CHECK_THROWS_WITH(funnel_config_from_json({{"ranker", nlohmann::json::object()}}, "f.json"), Contains("f.json") && Contains("'ranker'"));
  CHECK_THROWS_WITH(funnel_config_from_json({{"pre_ranking", {{"model", "dnn"}}}}, "f.json"),
                    Contains("section pre_ranking") && Contains("'model'"));
  CHECK_THROWS_WITH(funnel_config_from_json({{"retrieval", {{"epochs", "many"}}}}, "f.json"),
                    Contains("section retrieval") && Contains("'epochs'"));
  CHECK_THROWS_WITH(funnel_config_from_json({{"pre_ranking", {{"two_tower_epochs", 1}}}}, "f.json"), Contains("two_tower_epochs"));
}

TEST_CASE("train_funnel: three trained stages in one file, answering as the stage files do; a resumed run reuses them",
          "[funnel][slow]") {
  const Dataset& data = funnel::test::small_dataset();
  funnel::test::TempDir dir;
  const FunnelConfig config = small_funnel(dir);
  FunnelTrainingOptions options;
  options.work_dir = dir.file("stages");
  const FunnelTrainingResult run = train_funnel(data, config, options);
  REQUIRE(run.retrieval);
  REQUIRE(run.pre_ranking);
  const auto model = load(run.model_file);
  CHECK(model->has_retrieval());
  CHECK(model->has_pre_ranking());
  CHECK(model->has_ranking());
  // Written by the SDK's bundle from the exporter's stage files: every checksum present and matching.
  CHECK(model->has_checksums());
  CHECK(model->verify().is_ok());

  // Stage by stage, the joined file answers as the file each stage came from.
  const auto retrieval = load(run.retrieval_file);
  const auto ranking = load(run.ranking_file);
  CHECK_FALSE(ranking->has_retrieval());
  RetrieveOptions retrieve;
  retrieve.k = 20;
  const std::vector<std::string> behaviours = {data.items.keys[3], data.items.keys[8]};
  for (size_t u : {0, 7, 42}) {
    const Features& user = data.users.raw[u];
    std::vector<Recommendation> joined_hits, stage_hits;
    REQUIRE(model->retrieve(user, retrieve, &joined_hits).is_ok());
    REQUIRE(retrieval->retrieve(user, retrieve, &stage_hits).is_ok());
    REQUIRE(joined_hits.size() == stage_hits.size());
    std::vector<std::string> candidates;
    for (size_t i = 0; i < joined_hits.size(); ++i) {
      CHECK(joined_hits[i].key == stage_hits[i].key);
      CHECK(joined_hits[i].score == stage_hits[i].score);
      candidates.emplace_back(joined_hits[i].key);
    }
    std::vector<float> joined_p, stage_p;
    REQUIRE(model->rank(user, behaviours, candidates, &joined_p).is_ok());
    REQUIRE(ranking->rank(user, behaviours, candidates, &stage_p).is_ok());
    CHECK(joined_p == stage_p);
    REQUIRE(model->prerank(user, behaviours, candidates, &joined_p).is_ok());
    REQUIRE(ranking->prerank(user, behaviours, candidates, &stage_p).is_ok());
    CHECK(joined_p == stage_p);
  }
  // The lineage and each stage's metrics travel in the metadata.
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : model->metadata()) metadata[key] = value;
  CHECK(metadata.count("lineage"));
  CHECK(metadata.count("test_metrics"));
  CHECK(metadata.count("ranking_test"));
  CHECK(metadata.count("pre_ranking_test"));
  CHECK(metadata.count("funnel_config"));

  // Resumed: both stage files are reused, nothing is trained, the same file comes out.
  options.resume = true;
  const FunnelTrainingResult again = train_funnel(data, config, options);
  CHECK_FALSE(again.retrieval);
  CHECK_FALSE(again.pre_ranking);
  CHECK(again.model_file == run.model_file);

  // Stopped inside the AutoFAS run: the resumed run reads the teacher from the run's checkpoint
  // (ranking.ckpt), repeats the search, restores the student's epochs, and its stages answer as the
  // uninterrupted run's do.
  {
    FunnelTrainingOptions stopping;
    stopping.work_dir = dir.file("stopped");
    stopping.pre_ranking.training = [](const std::string& what, uint32_t) {
      RankerObserver observer;
      observer.on_epoch = [what](const RankerEpoch&) {
        if (what == "student") throw std::runtime_error("stopped");
      };
      return observer;
    };
    CHECK_THROWS_WITH(train_funnel(data, config, stopping), "stopped");
    CHECK(std::filesystem::exists(stopping.work_dir + "/ranking.ckpt"));
    std::filesystem::create_directories(dir.file("stopped_ranking"));
    for (const char* name : {"/ranking.ckpt", "/ranking.ckpt.stage"})  // kept for the changed-section step below
      std::filesystem::copy_file(stopping.work_dir + name, dir.file("stopped_ranking") + name);
    FunnelTrainingOptions resuming;
    resuming.work_dir = stopping.work_dir;
    resuming.resume = true;
    std::string notes;
    resuming.on_note = [&notes](const std::string& note) { notes += note + "\n"; };
    const FunnelTrainingResult resumed = train_funnel(data, config, resuming);
    CHECK_FALSE(resumed.retrieval);  // its stage file was written before the stop
    REQUIRE(resumed.pre_ranking);
    CHECK_THAT(notes, Contains("the trained teacher read from") && Contains("ranking.ckpt") && Contains("resumed from"));
    CHECK_FALSE(std::filesystem::exists(stopping.work_dir + "/ranking.ckpt"));  // removed once the stage file is written
    const auto resumed_ranking = load(resumed.ranking_file);
    const std::vector<std::string> candidates = {data.items.keys[1], data.items.keys[5], data.items.keys[9], data.items.keys[30]};
    for (size_t u : {0, 7, 42}) {
      const std::vector<std::string> history = {data.items.keys[3], data.items.keys[8]};
      std::vector<float> expected, got;
      REQUIRE(ranking->rank(data.users.raw[u], history, candidates, &expected).is_ok());
      REQUIRE(resumed_ranking->rank(data.users.raw[u], history, candidates, &got).is_ok());
      CHECK(got == expected);
      REQUIRE(ranking->prerank(data.users.raw[u], history, candidates, &expected).is_ok());
      REQUIRE(resumed_ranking->prerank(data.users.raw[u], history, candidates, &got).is_ok());
      CHECK(got == expected);
    }
  }

  // A changed ranking section retrains the ranking stages and reuses retrieval. A checkpoint that a stopped
  // run of the old section left is removed (said so), not resumed from (the trainer would refuse it).
  for (const char* name : {"/ranking.ckpt", "/ranking.ckpt.stage"})
    std::filesystem::copy_file(dir.file("stopped_ranking") + name, options.work_dir + name);
  FunnelConfig changed = config;
  changed.pre_ranking.mask_init = 0.8f;
  std::string notes;
  options.on_note = [&notes](const std::string& note) { notes += note + "\n"; };
  const FunnelTrainingResult partly = train_funnel(data, changed, options);
  CHECK_FALSE(partly.retrieval);
  CHECK(partly.pre_ranking);
  CHECK_THAT(notes, Contains("ranking: removing") && Contains("ranking.ckpt") && Contains("training the stage afresh"));
  CHECK_THAT(notes, !Contains("resumed from"));
  CHECK_FALSE(std::filesystem::exists(options.work_dir + "/ranking.ckpt"));

  // The cascade evaluation: retrieval alone scores what the retrieval evaluation scores (top 10).
  CascadeGrid grid;
  grid.retrieve_k = {40, 80};
  grid.prerank_k = {20, 60};
  grid.threads = 2;
  const Split split = leave_last_out(data);
  const std::vector<CascadeRow> rows = evaluate_cascade(*model, data, split, Holdout::kTest, grid);
  // retrieval; then per K1: + ranking, and the whole cascade for each K2 below K1.
  REQUIRE(rows.size() == 1 + 2 + 1 + 2);
  CHECK(rows[0].stages == "retrieval");
  CHECK(rows[1].stages == "retrieval+ranking");
  CHECK(rows[2].stages == "retrieval+pre_ranking+ranking");
  CHECK(rows[2].prerank_k == 20);
  CHECK(rows[5].retrieve_k == 80);
  CHECK(rows[5].prerank_k == 60);
  CHECK(rows[0].recall == Approx(run.retrieval->test.recall_at(10)).margin(1.5 / static_cast<double>(rows[0].users)));
  for (const CascadeRow& row : rows) {
    CHECK(row.users == run.retrieval->test.users);
    CHECK(row.recall == row.hit_rate);
    CHECK(row.ndcg <= row.recall);
    CHECK(row.total_ms > 0);
    CHECK((row.ranking_ms > 0) == (row.stages != "retrieval"));
    CHECK((row.pre_ranking_ms > 0) == (row.prerank_k > 0));
  }
}

TEST_CASE("train_funnel: refuses to run without a work folder", "[funnel]") {
  funnel::test::TempDir dir;
  CHECK_THROWS_AS(train_funnel(funnel::test::small_dataset(), FunnelConfig{}, {}), ConfigError);
}
