// CAN's multi-level independence (Bian et al., WSDM 2022, section 3.3), each level a switch of the ranker
// config: which tables exist and which tables each co-action pair reads, the config's checks, and a
// model without parameter independence trained and served from its file. The gradient checks and the
// trainer-vs-SDK parity of every level are the "full", "shared" and "shared-wide" variants of
// test_ranker.cpp.
#include <catch2/catch.hpp>
#include <memory>
#include <set>

#include "funnel/model.hpp"
#include "support.hpp"
#include "train/core/errors.hpp"
#include "train/data/ctr_data.hpp"
#include "train/export/export.hpp"
#include "train/ranking/ranker_model.hpp"
#include "train/ranking/ranker_training.hpp"

using namespace funnel::train;

namespace {

// Four pairs over two induction features and two feeds: every feature sits in two pairs.
RankerConfig four_pairs() {
  RankerConfig config = funnel::test::small_ranker_config();
  config.hidden = {6};
  config.coaction = {"item_id:item_id", "item_id:category", "category:item_id", "category:category"};
  return config;
}

std::set<std::string> coaction_tables(RankerModel& model) {
  std::set<std::string> names;
  for (const Parameter* p : model.parameters())
    if (p->name.rfind("ranking/coaction/", 0) == 0) names.insert(p->name);
  return names;
}

}  // namespace

TEST_CASE("CAN independence: the config reads each level, parameter independence on by default", "[ranker][independence]") {
  const RankerConfig defaults;
  CHECK(defaults.parameter_independence);
  CHECK_FALSE(defaults.combination_independence);
  CHECK_FALSE(defaults.order_independence);
  const RankerConfig read = ranker_config_from_json(
      {{"parameter_independence", false}, {"order_independence", true}}, "test.json");
  CHECK_FALSE(read.parameter_independence);
  CHECK(read.order_independence);
  CHECK(ranker_config_to_json(read).at("parameter_independence") == false);
  // Combination independence gives each pair tables of its own; without parameter independence there are none.
  CHECK_THROWS_WITH(ranker_config_from_json({{"parameter_independence", false}, {"combination_independence", true}}, "test.json"),
                    Catch::Contains("test.json") && Catch::Contains("combination_independence needs parameter_independence"));
  CHECK_THROWS_WITH(ranker_config_from_json({{"parameter_independence", "no"}}, "test.json"), Catch::Contains("parameter_independence"));
}

TEST_CASE("CAN independence: parameter and combination independence decide the co-action tables", "[ranker][independence]") {
  const auto& data = funnel::test::small_dataset();
  RankerConfig config = four_pairs();
  const auto block = [&] {
    RankerModel probe(data, config);
    return probe.coaction_info()[0].induction->shape[1];
  };

  SECTION("parameter independence alone: one induction and one feed table per feature, shared by the pairs") {
    RankerModel model(data, config);
    CHECK(coaction_tables(model) == std::set<std::string>{"ranking/coaction/induction/item_id", "ranking/coaction/induction/category",
                                                            "ranking/coaction/feed/item_id", "ranking/coaction/feed/category"});
    const auto& info = model.coaction_info();
    CHECK(info[0].induction == info[1].induction);  // item_id induces two pairs
    CHECK(info[0].feed == info[2].feed);            // item_id feeds two pairs
    CHECK(info[0].induction != &model.item_table(0));
    CHECK(model.item_table(0).shape[1] == config.embedding_dim);
  }
  SECTION("combination independence: every pair its own induction table and its own feed table") {
    config.combination_independence = true;
    RankerModel model(data, config);
    const auto tables = coaction_tables(model);
    CHECK(tables.size() == 8);
    CHECK(tables.count("ranking/coaction/induction/1/item_id") == 1);
    CHECK(tables.count("ranking/coaction/feed/1/category") == 1);
    CHECK(tables.count("ranking/coaction/feed/3/category") == 1);
    std::set<const Parameter*> inductions, feeds;
    for (const auto& pair : model.coaction_info()) {
      inductions.insert(pair.induction);
      feeds.insert(pair.feed);
    }
    CHECK(inductions.size() == 4);
    CHECK(feeds.size() == 4);
  }
  SECTION("no parameter independence: the pairs read the features' own embeddings") {
    const uint64_t width = block();
    config.parameter_independence = false;
    RankerModel model(data, config);
    CHECK(coaction_tables(model).empty());
    // Both item features induce, so each embedding is as wide as the micro-MLP's parameters, and serves as
    // the candidate's and the behaviours' representation too.
    CHECK(model.item_table(0).shape[1] == width);
    CHECK(model.item_table(1).shape[1] == width);
    CHECK(model.view().item_inputs[0].dim == width);
    for (const auto& pair : model.coaction_info()) {
      CHECK((pair.induction == &model.item_table(0) || pair.induction == &model.item_table(1)));
      CHECK((pair.feed == &model.item_table(0) || pair.feed == &model.item_table(1)));
    }
    RankerModel independent(data, four_pairs());
    CHECK(model.parameter_count() < independent.parameter_count());
  }
  SECTION("order independence: one parameter block per order") {
    const uint64_t width = block();
    config.order_independence = true;
    RankerModel model(data, config);
    CHECK(model.coaction_info()[0].induction->shape[1] == width * config.coaction_orders);
  }
}

TEST_CASE("CAN independence: without parameter independence a feed needs an embedding of its own, wide enough", "[ranker][independence]") {
  const auto& data = funnel::test::small_dataset();
  RankerConfig config = four_pairs();
  config.parameter_independence = false;
  config.coaction = {"item_id:region"};  // a user feed that is no user input has no embedding
  CHECK_THROWS_WITH(RankerModel(data, config), Catch::Contains("item_id:region") && Catch::Contains("user_features"));
  config.user_features = {"region"};
  config.coaction_feed_dim = 6;  // wider than region's 4-wide embedding
  config.coaction_layers = {3, 2};
  CHECK_THROWS_WITH(RankerModel(data, config), Catch::Contains("item_id:region") && Catch::Contains("coaction_feed_dim (6)") &&
                                                   Catch::Contains("has only 4"));
  config.embedding_dim = 6;
  CHECK_NOTHROW(RankerModel(data, config));
}

TEST_CASE("CAN independence: without parameter independence the exported file shares the embedding tensors", "[ranker][independence]") {
  const auto& data = funnel::test::small_dataset();
  RankerConfig config = four_pairs();
  config.coaction = {"item_id:item_id", "item_id:category"};  // item_id feeds a prefix, category a whole embedding
  config.parameter_independence = false;
  RankerModel model(data, config);
  Rng rng(3);
  model.init(rng);
  const std::vector<uint8_t> bytes = export_ranker(data, model, {});
  std::unique_ptr<funnel::Model> loaded;
  REQUIRE(funnel::Model::load_bytes(bytes.data(), bytes.size(), &loaded).is_ok());
  std::set<std::string> names;
  for (size_t t = 0; t < loaded->tensor_count(); ++t) names.insert(std::string(loaded->tensor_info(t).name));
  // item_id's embedding is both the candidate's input and the induction table; the feed reads its first
  // coaction_feed_dim values, written as a table of their own; category's embedding is the second feed.
  CHECK(names.count("ranking/item/item_id") == 1);
  CHECK(names.count("ranking/item/category") == 1);
  CHECK(names.count("ranking/coaction/feed/item_id/from_embedding") == 1);
  for (const std::string& name : names) CHECK((name.rfind("ranking/coaction/", 0) != 0 || name == "ranking/coaction/feed/item_id/from_embedding"));
}

TEST_CASE("CAN independence: a model without parameter independence learns the synthetic data", "[ranker][independence][training]") {
  CtrDataset ctr{funnel::test::small_dataset(), build_ctr_instances(funnel::test::small_dataset(), CtrOptions{10, 1, 0})};
  RankerConfig config = funnel::test::learning_ranker_config();
  config.parameter_independence = false;
  const RankerResult result = train_ranker(ctr, config);
  INFO("validation AUC " << result.validation.auc << ", test AUC " << result.test.auc);
  // The threshold of the ranker's own training test ("training learns the synthetic data"): random scores give
  // 0.5, with a standard error of about 0.03 on these 400 instances.
  CHECK(result.validation.auc > 0.62);
  std::unique_ptr<funnel::Model> loaded;
  REQUIRE(funnel::Model::load_bytes(result.model_file.data(), result.model_file.size(), &loaded).is_ok());
  const CtrMetrics again = evaluate_ranker(*loaded, ctr.data, ctr.instances, ctr.instances.test);
  CHECK(again.auc == Approx(result.test.auc).margin(1e-9));
}
