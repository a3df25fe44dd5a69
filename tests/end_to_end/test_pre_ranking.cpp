// The pre-ranking stage (the AutoFAS student): the exporter writes it beside the ranking stage with its item
// columns mapped onto the ranking stage's item table and its tensors under "pre_ranking/"; the loader checks
// it as the ranking stage and refuses co-action pairs; prerank() gives what the student gives alone; catalogue
// updates keep it. And the dense-layer latency table AutoFAS reads.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "train/core/errors.hpp"
#include "train/export/export.hpp"
#include "funnel/layer_latency.hpp"
#include "funnel/model.hpp"
#include "funnel_generated.h"
#include "train/ranking/ranker_model.hpp"
#include "support.hpp"
#include "train/retrieval/two_tower.hpp"

using namespace funnel::train;
using funnel::StatusCode;

namespace {

RankerConfig teacher_config() { return funnel::test::small_ranker_config(); }

RankerConfig student_config(std::vector<std::string> item_features) {
  RankerConfig config;
  config.model = "dnn";
  config.item_features = std::move(item_features);
  config.user_features = {"region"};
  config.max_history = 4;
  config.embedding_dim = 3;
  config.hidden = {5};
  return config;
}

std::unique_ptr<funnel::Model> load(const std::vector<uint8_t>& bytes) {
  std::unique_ptr<funnel::Model> model;
  const funnel::Status status = funnel::Model::load_bytes(bytes.data(), bytes.size(), &model);
  INFO(status.to_string());
  REQUIRE(status.is_ok());
  return model;
}

funnel::Status try_load(const std::vector<uint8_t>& bytes) {
  std::unique_ptr<funnel::Model> model;
  return funnel::Model::load_bytes(bytes.data(), bytes.size(), &model);
}

std::vector<uint8_t> pack(const funnel::fb::ModelT& model) {
  flatbuffers::FlatBufferBuilder builder;
  funnel::fb::FinishModelBuffer(builder, funnel::fb::Model::Pack(builder, &model));
  return {builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize()};
}

}  // namespace

TEST_CASE("Pre-ranking export: the student reads the ranking stage's item table and scores as it does alone", "[pre-ranking]") {
  const Dataset& data = funnel::test::small_dataset();
  RankerModel teacher(data, teacher_config());
  Rng rng(11);
  teacher.init(rng);
  // Another order than the table's (item_id, category), and a subset of it.
  for (const std::vector<std::string>& features : {std::vector<std::string>{"category", "item_id"}, std::vector<std::string>{"category"}}) {
    INFO(features.size() << " item features");
    RankerModel student(data, student_config(features));
    Rng student_rng(12);
    student.init(student_rng);
    const auto combined = load(export_funnel(data, nullptr, &teacher, &student, {{"pre_ranking", R"({"layers": [5, 1]})"}}));
    const auto alone = load(export_funnel(data, nullptr, nullptr, &student, {}));
    const auto teacher_alone = load(export_ranker(data, teacher, {}));
    REQUIRE(combined->has_pre_ranking());
    REQUIRE(combined->has_ranking());
    CHECK_FALSE(alone->has_ranking());
    CHECK(combined->item_table_size() == data.items.size());
    CHECK(combined->pre_ranker().item_inputs.size() == features.size());
    CHECK(combined->pre_ranker().max_behaviours == 4);
    CHECK(combined->pre_ranker().coactions.empty());
    for (size_t u = 0; u < 10; ++u) {
      const std::vector<std::string> behaviours = {data.items.keys[u], data.items.keys[u + 20], "unseen", data.items.keys[3]};
      const std::vector<std::string> candidates = {data.items.keys[u + 1], data.items.keys[50], data.items.keys[u * 7], data.items.keys[119]};
      std::vector<float> together, by_itself, ranked, ranked_alone;
      REQUIRE(combined->prerank(data.users.raw[u], behaviours, candidates, &together).is_ok());
      REQUIRE(alone->prerank(data.users.raw[u], behaviours, candidates, &by_itself).is_ok());
      CHECK(together == by_itself);
      // The ranking stage is unchanged by the student beside it.
      REQUIRE(combined->rank(data.users.raw[u], behaviours, candidates, &ranked).is_ok());
      REQUIRE(teacher_alone->rank(data.users.raw[u], behaviours, candidates, &ranked_alone).is_ok());
      CHECK(ranked == ranked_alone);
      for (float p : together) CHECK((p > 0.0f && p < 1.0f));
    }
    // The student's tensors are its own, named apart from the ranking stage's.
    std::set<std::string> names;
    size_t pre = 0;
    for (size_t t = 0; t < combined->tensor_count(); ++t) {
      const std::string name(combined->tensor_info(t).name);
      CHECK(names.insert(name).second);
      if (name.rfind("pre_ranking/", 0) == 0) ++pre;
      else CHECK(name.rfind("ranking/", 0) == 0);
    }
    CHECK(pre == alone->tensor_count());
    CHECK(names.count("pre_ranking/dense0/weight") == 1);
    CHECK(names.count("ranking/dense0/weight") == 1);
    // An unknown candidate is an error, as in rank(); a model without the stage says so.
    std::vector<float> p;
    const funnel::Status unknown = combined->prerank(data.users.raw[0], {}, std::vector<std::string>{"no-such-item"}, &p);
    CHECK(unknown.code() == StatusCode::kNotFound);
    CHECK_THAT(unknown.message(), Catch::Contains("no-such-item"));
    const funnel::Status none = teacher_alone->prerank(data.users.raw[0], {}, std::vector<std::string>{data.items.keys[0]}, &p);
    CHECK(none.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(none.message(), Catch::Contains("no pre-ranking stage"));
    const funnel::Status no_ranking = alone->rank(data.users.raw[0], {}, std::vector<std::string>{data.items.keys[0]}, &p);
    CHECK_THAT(no_ranking.message(), Catch::Contains("no ranking stage"));
  }
}

TEST_CASE("Pre-ranking export refuses a student the file cannot hold", "[pre-ranking]") {
  const Dataset& data = funnel::test::small_dataset();
  RankerConfig narrow = teacher_config();
  narrow.item_features = {"item_id"};
  RankerModel teacher(data, narrow);
  SECTION("an item feature the ranking stage's item table lacks is named") {
    RankerModel student(data, student_config({"category"}));
    CHECK_THROWS_WITH(export_funnel(data, nullptr, &teacher, &student, {}),
                      Catch::Contains("item feature 'category' is not a column of the ranking stage's item table (item_id)"));
  }
  SECTION("co-action pairs") {
    RankerModel can(data, teacher_config());
    CHECK_THROWS_AS(export_funnel(data, nullptr, &teacher, &can, {}), TrainingError);
    CHECK_THROWS_WITH(export_funnel(data, nullptr, &teacher, &can, {}), Catch::Contains("co-action"));
  }
}

TEST_CASE("Pre-ranking loader: checked as the ranking stage, without co-action pairs", "[pre-ranking][hostile]") {
  const Dataset& data = funnel::test::small_dataset();
  RankerModel teacher(data, teacher_config());
  RankerModel student(data, student_config({"item_id"}));
  const std::vector<uint8_t> bytes = export_funnel(data, nullptr, &teacher, &student, {});
  const funnel::fb::Model* root = funnel::fb::GetModel(bytes.data());
  SECTION("a pre-ranking stage with co-action pairs is corrupt") {
    std::unique_ptr<funnel::fb::ModelT> model(root->UnPack()), other(root->UnPack());
    model->pre_ranking = std::move(other->ranking);
    const funnel::Status status = try_load(pack(*model));
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Catch::Contains("the pre-ranking stage has 2 co-action pairs"));
  }
  SECTION("a pre-ranking stage needs the item table") {
    std::unique_ptr<funnel::fb::ModelT> model(root->UnPack());
    model->ranking.reset();
    model->items.reset();
    const funnel::Status status = try_load(pack(*model));
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Catch::Contains("the pre-ranking stage needs the model's item table"));
  }
  SECTION("its layers are checked as the ranking stage's") {
    std::unique_ptr<funnel::fb::ModelT> model(root->UnPack());
    model->pre_ranking->layers.pop_back();  // no logit layer
    const funnel::Status status = try_load(pack(*model));
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Catch::Contains("pre-ranking stage: the last layer must have one output"));
  }
  SECTION("its item inputs must be columns of the item table") {
    std::unique_ptr<funnel::fb::ModelT> model(root->UnPack());
    model->pre_ranking->item_inputs[0]->feature = 0;  // user_id
    const funnel::Status status = try_load(pack(*model));
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Catch::Contains("pre-ranking item input 'user_id' is not a column of the item table"));
  }
  SECTION("the file as written loads") { CHECK(try_load(bytes).is_ok()); }
}

TEST_CASE("Catalogue updates keep the pre-ranking stage", "[pre-ranking][catalogue]") {
  const Dataset& data = funnel::test::small_dataset();
  TrainConfig retrieval_config;
  retrieval_config.seed = 3;
  const TwoTowerModel towers(data, retrieval_config);
  RankerModel teacher(data, teacher_config()), student(data, student_config({"category", "item_id"}));
  Rng rng(13);
  teacher.init(rng);
  student.init(rng);
  const RetrievalPart retrieval{towers, retrieval_config};
  const auto model = load(export_funnel(data, &retrieval, &teacher, &student, {}));
  funnel::CatalogueUpdate update;
  funnel::Features item = data.items.raw[4];
  update.upsert.emplace_back("brand-new", item);
  update.remove = {data.items.keys[9]};
  std::unique_ptr<funnel::Model> updated;
  REQUIRE(model->update_catalogue(update, &updated).is_ok());
  REQUIRE(updated->has_pre_ranking());
  const std::vector<std::string> candidates = {data.items.keys[4], data.items.keys[20]};
  std::vector<float> before, after, fresh;
  REQUIRE(model->prerank(data.users.raw[1], {}, candidates, &before).is_ok());
  REQUIRE(updated->prerank(data.users.raw[1], {}, candidates, &after).is_ok());
  CHECK(before == after);
  // The new item has the features of item 4, so the student scores it as item 4 in item 4's place.
  REQUIRE(updated->prerank(data.users.raw[1], {}, std::vector<std::string>{"brand-new"}, &fresh).is_ok());
  CHECK(fresh[0] == before[0]);
  CHECK(updated->prerank(data.users.raw[1], {}, std::vector<std::string>{data.items.keys[9]}, &fresh).code() == StatusCode::kNotFound);
}

TEST_CASE("Layer latency: a table of the widths asked for, as the trainer reads it", "[pre-ranking][latency]") {
  funnel::LayerLatencyOptions options;
  options.candidates = 50;
  options.inputs = {4, 16, 40};
  options.outputs = {1, 8};
  options.repeats = 3;
  options.min_sample_microseconds = 50;
  options.target = "test \"quoted\"";
  funnel::LayerLatencyTable table;
  REQUIRE(funnel::measure_layer_latency(options, &table).is_ok());
  REQUIRE(table.microseconds.size() == 6);
  for (double t : table.microseconds) CHECK((t > 0.0 && std::isfinite(t)));
  // A layer 40 -> 8 does 80 times the work of 4 -> 1.
  CHECK(table.at(2, 1) > table.at(0, 0));
  const nlohmann::json json = nlohmann::json::parse(funnel::layer_latency_json(table));
  CHECK(json.at("target") == "test \"quoted\"");
  CHECK(json.at("candidates") == 50);
  CHECK(json.at("activation") == "prelu");
  CHECK(json.at("inputs") == nlohmann::json({4, 16, 40}));
  CHECK(json.at("outputs") == nlohmann::json({1, 8}));
  REQUIRE(json.at("microseconds").size() == 3);
  CHECK(json.at("microseconds")[2].size() == 2);
  CHECK(std::fabs(json.at("microseconds")[2][1].get<double>() - table.at(2, 1)) < 1e-3);
  CHECK(json.at("repeats") == 3);
  CHECK(json.at("date").get<std::string>().size() == 20);

  options.target.clear();
  options.inputs = {8};
  options.outputs = {4};
  REQUIRE(funnel::measure_layer_latency(options, &table).is_ok());
  CHECK(table.target == std::string("native ") + funnel::kernels::isa());
  using Change = void (*)(funnel::LayerLatencyOptions&);
  for (Change bad : {Change{[](funnel::LayerLatencyOptions& o) { o.candidates = 0; }}, Change{[](funnel::LayerLatencyOptions& o) { o.inputs.clear(); }},
                     Change{[](funnel::LayerLatencyOptions& o) { o.outputs = {0}; }}, Change{[](funnel::LayerLatencyOptions& o) { o.repeats = 0; }}}) {
    funnel::LayerLatencyOptions wrong = options;
    bad(wrong);
    CHECK(funnel::measure_layer_latency(wrong, &table).code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("The timed layer is the ranker's: dense product, then PReLU, row by row", "[pre-ranking][latency]") {
  const std::vector<float> weight = {1, -2, 0.5f, 3, 1, -1}, bias = {0.5f, -0.25f}, alpha = {0.1f, 0.2f};
  const std::vector<float> x = {1, 2, 3, -1, 0, 2};  // two rows of three
  funnel::DenseLayerView layer{weight.data(), bias.data(), 3, 2, funnel::Activation::kPRelu, alpha.data()};
  std::vector<float> y(4);
  funnel::ranker_dense_layer(layer, x.data(), 2, y.data());
  // Row 0: 1 - 4 + 1.5 + 0.5 = -1 -> -0.1; 3 + 2 - 3 - 0.25 = 1.75. Row 1: -1 + 0 + 1 + 0.5 = 0.5; -3 + 0 - 2 - 0.25 -> -1.05.
  CHECK(y[0] == Approx(-0.1f));
  CHECK(y[1] == Approx(1.75f));
  CHECK(y[2] == Approx(0.5f));
  CHECK(y[3] == Approx(-1.05f));
}
