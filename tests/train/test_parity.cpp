// The trainer's forward pass and the SDK on the exported file give the same embeddings; the C ABI
// gives the same answers as the C++ API.
#include <catch2/catch.hpp>
#include <cmath>
#include <numeric>

#include "train/export/export.hpp"
#include "funnel/funnel.hpp"
#include "funnel_c.h"
#include "train/data/split.hpp"
#include "support.hpp"
#include "train/retrieval/two_tower.hpp"

using namespace funnel;
using namespace funnel::train;

namespace {

TrainConfig small_config() {
  TrainConfig config;
  config.embedding_dim = 8;
  config.hidden = {16, 12};
  config.output_dim = 8;
  config.epochs = 1;
  config.batch_size = 32;
  return config;
}

}  // namespace

TEST_CASE("Parity: trainer forward == SDK forward on the exported file, from raw features", "[parity]") {
  const Dataset& data = test::small_dataset();
  const TrainConfig config = small_config();
  TwoTowerModel model(data, config);
  // A few optimisation steps so the parameters are not just their initial values.
  const Split split = leave_last_out(data);
  std::vector<uint32_t> users, items;
  std::vector<float> log_q;
  for (size_t i = 0; i < 32; ++i) {
    users.push_back(split.train[i].user);
    items.push_back(split.train[i].item);
    log_q.push_back(-1.0f);
  }
  two_tower_step(model, users, items, log_q, config, true);
  for (Parameter* p : model.parameters())
    for (size_t i = 0; i < p->size(); ++i) p->value[i] -= 0.1f * p->grad[i];

  const std::vector<uint8_t> bytes = export_two_tower(data, model, config, {});
  std::unique_ptr<Model> sdk;
  REQUIRE(Model::load_bytes(bytes.data(), bytes.size(), &sdk).is_ok());

  std::vector<uint32_t> all_users(data.users.size());
  std::iota(all_users.begin(), all_users.end(), 0u);
  const float* trainer_users = model.user_tower().forward(all_users);
  const size_t dim = model.user_tower().output_dim();
  std::vector<float> embedding;
  double worst = 0;
  for (size_t u = 0; u < data.users.size(); ++u) {
    REQUIRE(sdk->user_embedding(data.users.raw[u], &embedding).is_ok());
    for (size_t k = 0; k < dim; ++k) worst = std::max(worst, static_cast<double>(std::fabs(embedding[k] - trainer_users[u * dim + k])));
  }
  CHECK(worst < 1e-5);

  std::vector<uint32_t> all_items(data.items.size());
  std::iota(all_items.begin(), all_items.end(), 0u);
  const float* trainer_items = model.item_tower().forward(all_items);
  worst = 0;
  for (size_t i = 0; i < data.items.size() * dim; ++i)
    worst = std::max(worst, static_cast<double>(std::fabs(sdk->catalogue_embeddings()[i] - trainer_items[i])));
  CHECK(worst < 1e-5);

  // Raw features encoded by the SDK give exactly the trainer's ids.
  EncodedFeatures from_raw, from_trainer;
  for (size_t u = 0; u < data.users.size(); ++u) {
    REQUIRE(sdk->encode(data.users.raw[u], sdk->user_tower(), &from_raw).is_ok());
    encode_row(data, data.users, u, &from_trainer);
    REQUIRE(from_raw.ids == from_trainer.ids);
  }
  for (size_t i = 0; i < data.items.size(); ++i) {
    REQUIRE(sdk->encode(data.items.raw[i], sdk->item_tower(), &from_raw).is_ok());
    encode_row(data, data.items, i, &from_trainer);
    REQUIRE(from_raw.ids == from_trainer.ids);
    for (size_t f = 0; f < from_raw.dense.size(); ++f) REQUIRE(from_raw.dense[f] == Approx(from_trainer.dense[f]).margin(1e-6));
  }
}

TEST_CASE("Parity: the C ABI answers as the C++ API does", "[parity][c-abi]") {
  const auto bytes = test::small_model_bytes();
  FunnelModel* handle = nullptr;
  REQUIRE(funnel_model_load_bytes(bytes.data(), bytes.size(), &handle) == FUNNEL_OK);
  std::unique_ptr<Model> model;
  REQUIRE(Model::load_bytes(bytes.data(), bytes.size(), &model).is_ok());

  const Dataset& data = test::small_dataset();
  const Features& user = data.users.raw[7];
  FunnelFeatures* features = funnel_features_new();
  for (const auto& [name, value] : user.entries()) {
    if (value.type() == FeatureValue::Type::kNumber) funnel_features_set_number(features, name.c_str(), value.number_value());
    else funnel_features_set_string(features, name.c_str(), value.string_value().c_str());
  }
  const char* exclude[] = {data.items.keys[0].c_str()};
  std::vector<uint32_t> indices(10);
  std::vector<float> scores(10);
  size_t count = 0;
  REQUIRE(funnel_model_retrieve(handle, features, 10, exclude, 1, indices.data(), scores.data(), &count) == FUNNEL_OK);

  RetrieveOptions options;
  options.k = 10;
  options.exclude = {data.items.keys[0]};
  std::vector<Recommendation> expected;
  REQUIRE(model->retrieve(user, options, &expected).is_ok());
  REQUIRE(count == expected.size());
  for (size_t i = 0; i < count; ++i) {
    CHECK(indices[i] == expected[i].index);
    CHECK(scores[i] == expected[i].score);
    CHECK(indices[i] != 0);
  }

  FunnelFeatures* empty = funnel_features_new();
  CHECK(funnel_model_retrieve(handle, empty, 10, nullptr, 0, indices.data(), scores.data(), &count) == FUNNEL_INVALID_ARGUMENT);
  CHECK(std::string(funnel_last_error()).find("missing feature") != std::string::npos);
  FunnelModel* garbage = nullptr;
  CHECK(funnel_model_load_bytes("garbage!", 8, &garbage) == FUNNEL_CORRUPT_MODEL);
  CHECK(garbage == nullptr);
  funnel_features_free(empty);
  funnel_features_free(features);
  funnel_model_free(handle);
}

TEST_CASE("Cold-start items: the SDK embeds an item from its raw features as the catalogue holds it", "[parity][catalogue]") {
  const Dataset& data = test::small_dataset();
  const TrainConfig config = small_config();
  const TwoTowerModel model(data, config);
  const std::vector<uint8_t> bytes = export_two_tower(data, model, config, {});
  std::unique_ptr<Model> sdk;
  REQUIRE(Model::load_bytes(bytes.data(), bytes.size(), &sdk).is_ok());
  const size_t dim = sdk->embedding_dim();
  std::vector<float> embedding;
  double worst = 0;
  for (size_t i = 0; i < data.items.size(); ++i) {
    REQUIRE(sdk->item_embedding(data.items.raw[i], &embedding).is_ok());
    REQUIRE(embedding.size() == dim);
    for (size_t k = 0; k < dim; ++k)
      worst = std::max(worst, static_cast<double>(std::fabs(embedding[k] - sdk->catalogue_embeddings()[i * dim + k])));
  }
  // The catalogue was written by the same tower code; only the dense features' normalisation, applied to the
  // raw value here and at read time in the trainer, may differ in the last bits.
  CHECK(worst < 1e-5);

  // An item the catalogue lacks: its embedding scores against a user as the catalogue's items do.
  Features cold = data.items.raw[0];
  cold.set("item_id", "a-new-item").set("tags", std::vector<std::string>{"t1"});
  REQUIRE(sdk->item_embedding(cold, &embedding).is_ok());
  double norm = 0;
  for (float x : embedding) norm += static_cast<double>(x) * x;
  CHECK(norm == Approx(1.0).margin(1e-5));
  Features no_category;
  for (const auto& [name, value] : data.items.raw[0].entries())
    if (name != "category") no_category.set(name, value);
  const Status status = sdk->item_embedding(no_category, &embedding);
  CHECK(status.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(status.message(), Catch::Contains("category"));
}
