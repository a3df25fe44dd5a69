// Model::recommend, the whole cascade in one call: on a file with both stages it equals retrieval then
// ranking done by hand; on a file with one stage it is that stage; filters, errors and timings.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "export.hpp"
#include "funnel/model.hpp"
#include "funnel_c.h"
#include "ranker_model.hpp"
#include "support.hpp"
#include "two_tower.hpp"

using namespace funnel::train;
using funnel::CascadeOptions;
using funnel::CascadeResult;
using funnel::StatusCode;

namespace {

struct Files {
  std::vector<uint8_t> both_bytes;
  std::unique_ptr<funnel::Model> both, retrieval, ranking;
};

// Untrained models of the small synthetic dataset: the cascade's logic does not need trained weights, only
// a retrieval stage and a ranking stage that read the same items.
const Files& files() {
  static const Files loaded = [] {
    const Dataset& data = funnel::test::small_dataset();
    TrainConfig retrieval_config;
    retrieval_config.seed = 4;
    const TwoTowerModel towers(data, retrieval_config);
    RankerConfig ranker_config;
    ranker_config.max_history = 5;
    ranker_config.embedding_dim = 4;
    ranker_config.hidden = {6, 3};
    ranker_config.coaction_feed_dim = 4;
    ranker_config.coaction_layers = {3, 2};
    RankerModel ranker(data, ranker_config);
    Rng rng(5);
    ranker.init(rng);
    const RetrievalPart retrieval{towers, retrieval_config};
    Files f;
    const auto load = [](const std::vector<uint8_t>& bytes, std::unique_ptr<funnel::Model>* out) {
      REQUIRE(funnel::Model::load_bytes(bytes.data(), bytes.size(), out).is_ok());
    };
    f.both_bytes = export_funnel(data, &retrieval, &ranker, {});
    load(f.both_bytes, &f.both);
    load(export_two_tower(data, towers, retrieval_config, {}), &f.retrieval);
    load(export_ranker(data, ranker, {}), &f.ranking);
    return f;
  }();
  return loaded;
}

std::vector<std::string> keys_of(const CascadeResult& result) {
  std::vector<std::string> keys;
  for (const funnel::CascadeItem& item : result.items) keys.emplace_back(item.key);
  return keys;
}

}  // namespace

TEST_CASE("Cascade: retrieval then ranking in one call equals the two stages run by hand", "[cascade]") {
  const Dataset& data = funnel::test::small_dataset();
  const funnel::Model& model = *files().both;
  for (size_t user = 0; user < 20; ++user) {
    CascadeOptions options;
    options.k = 5;
    options.retrieve_k = 30;
    options.behaviours = {data.items.keys[user % 7], data.items.keys[11]};
    CascadeResult result;
    REQUIRE(model.recommend(data.users.raw[user], options, &result).is_ok());

    funnel::RetrieveOptions retrieve;
    retrieve.k = 30;
    std::vector<funnel::Recommendation> retrieved;
    REQUIRE(model.retrieve(data.users.raw[user], retrieve, &retrieved).is_ok());
    std::vector<std::string> candidates;
    for (const auto& r : retrieved) candidates.emplace_back(r.key);
    std::vector<float> probabilities;
    REQUIRE(model.rank(data.users.raw[user], options.behaviours, candidates, &probabilities).is_ok());
    std::vector<size_t> order(candidates.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return probabilities[a] > probabilities[b]; });

    REQUIRE(result.items.size() == 5);
    for (size_t i = 0; i < 5; ++i) {
      CHECK(result.items[i].key == candidates[order[i]]);
      CHECK(result.items[i].score == probabilities[order[i]]);
      CHECK(result.items[i].retrieval_score == retrieved[order[i]].score);
    }
    REQUIRE(result.stages.size() == 2);
    CHECK(result.stages[0].stage == "retrieval");
    CHECK(result.stages[0].scored == model.catalogue_size());
    CHECK(result.stages[0].kept == 30);
    CHECK(result.stages[1].stage == "ranking");
    CHECK(result.stages[1].scored == 30);
    CHECK(result.stages[1].kept == 5);
    CHECK(result.stages[0].milliseconds >= 0.0);
    CHECK(result.milliseconds >= result.stages[0].milliseconds + result.stages[1].milliseconds);
  }
}

TEST_CASE("Cascade: a file with one stage runs that stage", "[cascade]") {
  const Dataset& data = funnel::test::small_dataset();
  const funnel::Features& user = data.users.raw[2];
  SECTION("retrieval alone returns its top k") {
    CascadeOptions options;
    options.k = 12;
    CascadeResult result;
    REQUIRE(files().retrieval->recommend(user, options, &result).is_ok());
    funnel::RetrieveOptions retrieve;
    retrieve.k = 12;
    std::vector<funnel::Recommendation> retrieved;
    REQUIRE(files().retrieval->retrieve(user, retrieve, &retrieved).is_ok());
    REQUIRE(result.items.size() == 12);
    for (size_t i = 0; i < 12; ++i) {
      CHECK(result.items[i].key == retrieved[i].key);
      CHECK(result.items[i].score == retrieved[i].score);
    }
    REQUIRE(result.stages.size() == 1);
    CHECK(result.stages[0].kept == 12);
  }
  SECTION("ranking alone ranks the caller's candidates, once each, filtered") {
    const funnel::Model& model = *files().ranking;
    CascadeOptions options;
    options.k = 3;
    options.candidates = {data.items.keys[1], data.items.keys[2], data.items.keys[3], data.items.keys[2], data.items.keys[4]};
    options.exclude = {data.items.keys[4]};
    CascadeResult result;
    REQUIRE(model.recommend(user, options, &result).is_ok());
    const std::vector<std::string> kept = {data.items.keys[1], data.items.keys[2], data.items.keys[3]};
    std::vector<float> probabilities;
    REQUIRE(model.rank(user, {}, kept, &probabilities).is_ok());
    REQUIRE(result.items.size() == 3);
    for (const funnel::CascadeItem& item : result.items) {
      const size_t i = static_cast<size_t>(std::find(kept.begin(), kept.end(), item.key) - kept.begin());
      REQUIRE(i < kept.size());
      CHECK(item.score == probabilities[i]);
      CHECK(std::isnan(item.retrieval_score));
    }
    CHECK(result.items[0].score >= result.items[1].score);
    CHECK(result.items[1].score >= result.items[2].score);
    REQUIRE(result.stages.size() == 1);
    CHECK(result.stages[0].scored == 3);
    options.allow = {data.items.keys[3]};
    REQUIRE(model.recommend(user, options, &result).is_ok());
    CHECK(keys_of(result) == std::vector<std::string>{data.items.keys[3]});
  }
  SECTION("ranking alone needs candidates it knows") {
    const funnel::Model& model = *files().ranking;
    CascadeOptions options;
    CascadeResult result;
    CHECK(model.recommend(user, options, &result).code() == StatusCode::kInvalidArgument);
    options.candidates = {data.items.keys[1], "no-such-item"};
    const funnel::Status status = model.recommend(user, options, &result);
    CHECK(status.code() == StatusCode::kNotFound);
    CHECK_THAT(status.message(), Catch::Contains("no-such-item"));
  }
}

TEST_CASE("Cascade: exclude and allow lists, k beyond retrieve_k, bad requests", "[cascade]") {
  const Dataset& data = funnel::test::small_dataset();
  const funnel::Model& model = *files().both;
  const funnel::Features& user = data.users.raw[9];
  CascadeOptions options;
  options.k = 10;
  CascadeResult all;
  REQUIRE(model.recommend(user, options, &all).is_ok());
  SECTION("excluded items never appear, whatever their scores") {
    options.exclude = {std::string(all.items[0].key), std::string(all.items[3].key), "unknown-key"};
    CascadeResult result;
    REQUIRE(model.recommend(user, options, &result).is_ok());
    REQUIRE(result.items.size() == 10);
    for (const std::string& key : keys_of(result)) CHECK((key != all.items[0].key && key != all.items[3].key));
  }
  SECTION("an allow list restricts every stage to it") {
    options.allow = {data.items.keys[40], data.items.keys[41], data.items.keys[42], "unknown-key"};
    options.exclude = {data.items.keys[41]};
    CascadeResult result;
    REQUIRE(model.recommend(user, options, &result).is_ok());
    CHECK(result.stages[0].kept == 2);
    const std::vector<std::string> keys = keys_of(result);
    const std::set<std::string> got(keys.begin(), keys.end());
    CHECK(got == std::set<std::string>{data.items.keys[40], data.items.keys[42]});
  }
  SECTION("retrieval passes on at least k") {
    options.k = 40;
    options.retrieve_k = 25;
    CascadeResult result;
    REQUIRE(model.recommend(user, options, &result).is_ok());
    CHECK(result.stages[0].kept == 40);
    CHECK(result.items.size() == 40);
  }
  SECTION("the same request gives the same answer") {
    CascadeResult again;
    REQUIRE(model.recommend(user, options, &again).is_ok());
    CHECK(keys_of(again) == keys_of(all));
  }
  SECTION("errors") {
    options.k = 0;
    CascadeResult result;
    CHECK(model.recommend(user, options, &result).code() == StatusCode::kInvalidArgument);
    options.k = 5;
    funnel::Features partial;  // the user's features without "age"
    for (const auto& [name, value] : user.entries())
      if (name != "age") partial.set(name, value);
    const funnel::Status status = model.recommend(partial, options, &result);
    CHECK(status.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(status.message(), Catch::Contains("age"));
    CHECK(result.items.empty());
  }
}

TEST_CASE("Cascade through the C ABI: the same items and scores, per-stage timings, NULL checks", "[cascade][c-abi]") {
  const Dataset& data = funnel::test::small_dataset();
  FunnelModel* model = nullptr;
  REQUIRE(funnel_model_load_bytes(files().both_bytes.data(), files().both_bytes.size(), &model) == FUNNEL_OK);
  FunnelFeatures* user = funnel_features_new();
  for (const auto& [name, value] : data.users.raw[6].entries()) {
    if (value.type() == funnel::FeatureValue::Type::kNumber) funnel_features_set_number(user, name.c_str(), value.number_value());
    else funnel_features_set_string(user, name.c_str(), value.string_value().c_str());
  }
  const char* behaviours[] = {data.items.keys[3].c_str(), data.items.keys[8].c_str()};
  const char* exclude[] = {data.items.keys[0].c_str()};
  FunnelCascadeRequest request{};
  request.k = 6;
  request.retrieve_k = 25;
  request.behaviours = behaviours;
  request.behaviour_count = 2;
  request.exclude = exclude;
  request.exclude_count = 1;
  const char* keys[6];
  size_t lengths[6], count = 0;
  float scores[6];
  FunnelCascadeTimings timings;
  REQUIRE(funnel_recommend(model, user, &request, keys, lengths, scores, &count, &timings) == FUNNEL_OK);

  CascadeOptions options;
  options.k = 6;
  options.retrieve_k = 25;
  options.behaviours = {data.items.keys[3], data.items.keys[8]};
  options.exclude = {data.items.keys[0]};
  CascadeResult expected;
  REQUIRE(files().both->recommend(data.users.raw[6], options, &expected).is_ok());
  REQUIRE(count == expected.items.size());
  for (size_t i = 0; i < count; ++i) {
    CHECK(std::string_view(keys[i], lengths[i]) == expected.items[i].key);
    CHECK(scores[i] == expected.items[i].score);
  }
  CHECK(timings.retrieval_ms >= 0.0);
  CHECK(timings.ranking_ms >= 0.0);
  CHECK(timings.total_ms >= timings.retrieval_ms + timings.ranking_ms);

  const char* broken[] = {nullptr};
  request.exclude = broken;
  CHECK(funnel_recommend(model, user, &request, keys, lengths, scores, &count, nullptr) == FUNNEL_INVALID_ARGUMENT);
  CHECK_THAT(funnel_last_error(), Catch::Contains("exclude[0] is NULL"));
  CHECK(funnel_recommend(model, user, nullptr, keys, lengths, scores, &count, nullptr) == FUNNEL_INVALID_ARGUMENT);
  funnel_features_free(user);
  funnel_model_free(model);
}
