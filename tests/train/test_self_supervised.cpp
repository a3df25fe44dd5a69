// The self-supervised auxiliary task inside the two-tower model: gradients through both encoders, the
// masked features' default inputs and G's own layers; the item draws; training with it end to end.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <set>

#include "train/core/errors.hpp"
#include "gradient_check.hpp"
#include "support.hpp"
#include "train/retrieval/two_tower.hpp"
#include "train/retrieval/two_tower_training.hpp"

using namespace funnel::train;
using funnel::test::expect_close;
using funnel::test::numeric_gradient;

namespace {

TrainConfig small_config(const std::string& method) {
  TrainConfig config;
  config.embedding_dim = 4;
  config.hidden = {8};
  config.output_dim = 4;
  config.batch_size = 6;
  config.ssl = method;
  config.ssl_alpha = 0.7f;
  config.ssl_temperature = 0.5f;
  config.ssl_dropout = 0.5f;
  // A seed at which no ReLU input lies within the finite difference's step of zero: a central difference that
  // straddles a kink is wrong by up to half the slope change (seeds 0, 5 and 9 each have one such entry).
  config.seed = 3;
  return config;
}

}  // namespace

TEST_CASE("Self-supervised task: alpha * L_self's gradient reaches every parameter it uses", "[gradient][ssl]") {
  const auto [method, share] = GENERATE(table<std::string, std::string>({{"rfm", "full"},
                                                                         {"cfm", "full"},
                                                                         {"cfm", "partial"},
                                                                         {"rfm", "none"},
                                                                         {"spread_out", "full"},
                                                                         {"spread_out_square", "full"}}));
  INFO(method << ", G shares " << share);
  TrainConfig config = small_config(method);
  config.ssl_share_mlp = share;
  TwoTowerModel model(funnel::test::small_dataset(), config);
  SelfSupervisedTask& ssl = *model.self_supervised();
  const uint64_t state = ssl.rng().state();
  for (Parameter* p : model.parameters()) p->zero_grad();
  ssl.forward(/*gradients=*/true);
  ssl.backward();
  // The same draws every time: the loss is a function of the parameters alone.
  const auto loss = [&] {
    ssl.rng().restore(state);
    return config.ssl_alpha * ssl.forward(/*gradients=*/false);
  };
  Rng pick(3);
  size_t checked_nonzero = 0;
  for (Parameter* p : model.parameters()) {
    if (p->name.rfind("user/", 0) == 0) {
      CHECK(std::all_of(p->grad.begin(), p->grad.end(), [](float g) { return g == 0.0f; }));
      continue;
    }
    // The entries with gradient (the batch's embedding rows, the masked features' defaults), and a few at random.
    std::vector<size_t> entries;
    for (size_t i = 0; i < p->size() && entries.size() < 4; ++i)
      if (p->grad[i] != 0.0f) entries.push_back(i);
    checked_nonzero += entries.size();
    for (int trial = 0; trial < 3; ++trial) entries.push_back(pick.below(p->size()));
    for (size_t i : entries) expect_close(p->grad[i], numeric_gradient(p->value[i], loss), p->name);
  }
  CHECK(checked_nonzero > 0);
  if (self_supervised_masks(config)) {
    // Exactly the features masked in one of the views carry a default-input gradient.
    const FeatureMasks masks = ssl.masks();
    for (Parameter* p : model.parameters()) {
      if (p->name.find("/default/") == std::string::npos) continue;
      const std::string feature = p->name.substr(p->name.rfind('/') + 1);
      size_t f = 0;
      while (funnel::test::small_dataset().items.features[f].def.name != feature) ++f;
      const bool any = std::any_of(p->grad.begin(), p->grad.end(), [](float g) { return g != 0.0f; });
      INFO(feature);
      CHECK(any == (masks.first[f] || masks.second[f]));
    }
  }
}

TEST_CASE("Self-supervised task: G's own layers exist only when the MLP is not fully shared", "[ssl]") {
  const Dataset& data = funnel::test::small_dataset();
  const auto own = [&](const std::string& share) {
    TrainConfig config = small_config("cfm");
    config.ssl_share_mlp = share;
    TwoTowerModel model(data, config);
    return model.self_supervised()->parameters().size();
  };
  CHECK(own("full") == 0);
  CHECK(own("partial") == 2);  // the last layer's weight and bias
  CHECK(own("none") == 4);     // both layers
}

TEST_CASE("Self-supervised task: items are drawn uniformly from the catalogue, distinct within a batch", "[ssl]") {
  const Dataset& data = funnel::test::small_dataset();
  TrainConfig config = small_config("rfm");
  config.ssl_batch_size = 30;
  TwoTowerModel model(data, config);
  SelfSupervisedTask& ssl = *model.self_supervised();
  std::vector<double> seen(data.items.size(), 0.0);
  const int batches = 2000;
  for (int b = 0; b < batches; ++b) {
    ssl.forward(false);
    const std::vector<uint32_t>& items = ssl.batch();
    REQUIRE(items.size() == 30);
    CHECK(std::set<uint32_t>(items.begin(), items.end()).size() == items.size());
    for (uint32_t i : items) seen[i] += 1.0;
  }
  // Each item is in a batch with probability 30/120: 500 of 2000 times, sd about 19.
  const double expected = batches * 30.0 / static_cast<double>(data.items.size());
  for (double count : seen) CHECK(std::fabs(count - expected) < 6 * std::sqrt(expected));
}

TEST_CASE("Self-supervised task: 'training' sampling follows the interactions and skips untrained items", "[ssl]") {
  const Dataset& data = funnel::test::small_dataset();
  TrainConfig config = small_config("rfm");
  config.ssl_sampling = "training";
  config.ssl_batch_size = 4;
  TwoTowerModel model(data, config);
  SelfSupervisedTask& ssl = *model.self_supervised();
  std::vector<uint32_t> counts(data.items.size(), 0);
  counts[3] = 1000;
  counts[7] = 1000;
  counts[11] = 1;
  counts[50] = 1;
  counts[60] = 1;
  ssl.set_training_counts(counts);
  size_t popular = 0, batches = 200;
  for (size_t b = 0; b < batches; ++b) {
    ssl.forward(false);
    for (uint32_t i : ssl.batch()) {
      CHECK(counts[i] > 0);
      popular += i == 3 || i == 7;
    }
  }
  CHECK(popular == 2 * batches);  // the two popular items are in every batch
}

TEST_CASE("Self-supervised task: clear errors for configs it cannot run", "[ssl]") {
  CHECK_THROWS_AS(config_from_json({{"ssl", "masks"}}, "run.json"), ConfigError);
  CHECK_THROWS_WITH(config_from_json({{"ssl_share_mlp", "half"}}, "run.json"), Catch::Contains("ssl_share_mlp"));
  CHECK_THROWS_WITH(config_from_json({{"ssl_dropout", 1.0}}, "run.json"), Catch::Contains("ssl_dropout"));
  CHECK_THROWS_WITH(config_from_json({{"train_fraction", 0.0}}, "run.json"), Catch::Contains("train_fraction"));
  // One item feature: nothing to split into two views.
  Dataset data = funnel::test::small_dataset();
  data.items.features.resize(1);
  CHECK_THROWS_WITH(TwoTowerModel(data, small_config("cfm")), Catch::Contains("at least 2"));
  CHECK_NOTHROW(TwoTowerModel(data, small_config("spread_out")));
}

TEST_CASE("Self-supervised task: trains end to end, its loss falls and the main task still learns", "[ssl][training]") {
  const Dataset& data = funnel::test::small_dataset();
  const Split split = leave_last_out(data);
  TrainConfig config;
  config.epochs = 4;
  config.batch_size = 64;
  config.drift_sample = 0;
  config.ssl = "cfm";  // at the default alpha
  const TrainResult result = train_two_tower(data, split, config);
  REQUIRE(result.history.size() == 4);
  CHECK(result.history.back().ssl_loss < result.history.front().ssl_loss);
  CHECK(result.history.back().loss < result.history.front().loss);
  // Beside the same run without it: the main task learns as well (within the small test set's noise).
  config.ssl = "none";
  const TrainResult baseline = train_two_tower(data, split, config);
  INFO("R@50 with cfm " << result.test.recall_at(50) << ", without " << baseline.test.recall_at(50) << ", most popular "
                        << result.popular_test.recall_at(50));
  CHECK(result.test.recall_at(50) > baseline.test.recall_at(50) - 0.05);
  // The file holds the towers alone: the default inputs and G are training-only (tensor names are in the file).
  const std::string bytes(result.model_file.begin(), result.model_file.end());
  CHECK(bytes.find("item/embedding/item_id") != std::string::npos);
  CHECK(bytes.find("/default/") == std::string::npos);
}

TEST_CASE("train_fraction: trains on the chosen share of the interactions, scored on the same users and tail", "[ssl][training]") {
  const Dataset& data = funnel::test::small_dataset();
  const Split split = leave_last_out(data);
  const Split half = subsample_training(split, 0.5, 7);
  CHECK(half.train.size() > split.train.size() * 4 / 10);
  CHECK(half.train.size() < split.train.size() * 6 / 10);
  CHECK(half.tail_item == split.tail_item);
  CHECK(half.test_item == split.test_item);
  CHECK(half.train_items == split.train_items);
  size_t counted = 0;
  for (uint32_t c : half.item_train_count) counted += c;
  CHECK(counted == half.train.size());
  CHECK(subsample_training(split, 0.5, 7).train.size() == half.train.size());  // seeded
  TrainConfig config;
  config.epochs = 1;
  config.drift_sample = 0;
  config.train_fraction = 0.1f;
  CHECK(train_two_tower(data, split, config).train_interactions == subsample_training(split, 0.1, config.seed).train.size());
}
