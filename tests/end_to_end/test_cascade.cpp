// Model::recommend, the whole cascade in one call: on a file with both stages it equals retrieval then
// ranking done by hand; on a file with one stage it is that stage; with a pre-ranking stage (the AutoFAS
// student) every subset of the three stages runs in order; filters, errors and timings.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "train/export/export.hpp"
#include "funnel/model.hpp"
#include "funnel_c.h"
#include "train/ranking/ranker_model.hpp"
#include "support.hpp"
#include "train/retrieval/two_tower.hpp"

using namespace funnel::train;
using funnel::CascadeOptions;
using funnel::CascadeResult;
using funnel::StatusCode;

namespace {

struct Files {
  std::vector<uint8_t> both_bytes, three_bytes;
  std::unique_ptr<funnel::Model> both, retrieval, ranking;
  // With the pre-ranking stage: all three; retrieval + pre-ranking; pre-ranking + ranking; pre-ranking alone;
  // all three with a student whose parameters are all zero (every pre-ranking score ties).
  std::unique_ptr<funnel::Model> three, retrieval_pre, pre_ranking, pre_alone, three_tied;
};

// Untrained models of the small synthetic dataset: the cascade's logic does not need trained weights, only
// a retrieval stage and a ranking stage that read the same items.
const Files& files() {
  static const Files loaded = [] {
    const Dataset& data = funnel::test::small_dataset();
    TrainConfig retrieval_config;
    retrieval_config.seed = 4;
    const TwoTowerModel towers(data, retrieval_config);
    const RankerConfig ranker_config = funnel::test::small_ranker_config();
    RankerModel ranker(data, ranker_config);
    Rng rng(5);
    ranker.init(rng);
    // The student: a DNN on a subset of the user features, the item features in another order than the
    // ranking stage's item table, a shorter behaviour window and a narrower MLP.
    RankerConfig student_config;
    student_config.model = "dnn";
    student_config.item_features = {"category", "item_id"};
    student_config.user_features = {"age"};
    student_config.max_history = 3;
    student_config.embedding_dim = 3;
    student_config.hidden = {4};
    RankerModel student(data, student_config), zero_student(data, student_config);
    Rng student_rng(6);
    student.init(student_rng);
    const RetrievalPart retrieval{towers, retrieval_config};
    Files f;
    const auto load = [](const std::vector<uint8_t>& bytes, std::unique_ptr<funnel::Model>* out) {
      REQUIRE(funnel::Model::load_bytes(bytes.data(), bytes.size(), out).is_ok());
    };
    f.both_bytes = export_funnel(data, &retrieval, &ranker, {});
    load(f.both_bytes, &f.both);
    load(export_two_tower(data, towers, retrieval_config, {}), &f.retrieval);
    load(export_ranker(data, ranker, {}), &f.ranking);
    f.three_bytes = export_funnel(data, &retrieval, &ranker, &student, {});
    load(f.three_bytes, &f.three);
    load(export_funnel(data, &retrieval, nullptr, &student, {}), &f.retrieval_pre);
    load(export_funnel(data, nullptr, &ranker, &student, {}), &f.pre_ranking);
    load(export_funnel(data, nullptr, nullptr, &student, {}), &f.pre_alone);
    load(export_funnel(data, &retrieval, &ranker, &zero_student, {}), &f.three_tied);
    return f;
  }();
  return loaded;
}

std::vector<std::string> keys_of(const CascadeResult& result) {
  std::vector<std::string> keys;
  for (const funnel::CascadeItem& item : result.items) keys.emplace_back(item.key);
  return keys;
}

// One ranking-like stage by hand: the candidates' scores, and their order sorted stably by score.
std::vector<size_t> sorted_by(const std::vector<float>& scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
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
    // Unless a filter leaves it out anyway: excluded, or missing from a non-empty allow list.
    options.exclude = {"no-such-item"};
    REQUIRE(model.recommend(user, options, &result).is_ok());
    CHECK(keys_of(result) == std::vector<std::string>{data.items.keys[1]});
    options.exclude.clear();
    options.allow = {data.items.keys[1]};
    REQUIRE(model.recommend(user, options, &result).is_ok());
    CHECK(keys_of(result) == std::vector<std::string>{data.items.keys[1]});
    options.allow.push_back("no-such-item");
    CHECK(model.recommend(user, options, &result).code() == StatusCode::kNotFound);
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
  REQUIRE(funnel_model_recommend(model, user, &request, keys, lengths, scores, &count, &timings) == FUNNEL_OK);

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
  CHECK(funnel_model_recommend(model, user, &request, keys, lengths, scores, &count, nullptr) == FUNNEL_INVALID_ARGUMENT);
  CHECK_THAT(funnel_last_error(), Catch::Contains("exclude[0] is NULL"));
  CHECK(funnel_model_recommend(model, user, nullptr, keys, lengths, scores, &count, nullptr) == FUNNEL_INVALID_ARGUMENT);
  funnel_features_free(user);
  funnel_model_free(model);
}

TEST_CASE("Cascade: retrieval, pre-ranking to prerank_k, ranking to k equals the three stages run by hand", "[cascade][pre-ranking]") {
  const Dataset& data = funnel::test::small_dataset();
  const funnel::Model& model = *files().three;
  REQUIRE(model.has_retrieval());
  REQUIRE(model.has_pre_ranking());
  REQUIRE(model.has_ranking());
  for (size_t user = 0; user < 15; ++user) {
    CascadeOptions options;
    options.k = 4;
    options.retrieve_k = 40;
    options.prerank_k = 12;
    options.behaviours = {data.items.keys[user % 9], data.items.keys[13], data.items.keys[2], "unseen-behaviour"};
    CascadeResult result;
    REQUIRE(model.recommend(data.users.raw[user], options, &result).is_ok());

    funnel::RetrieveOptions retrieve;
    retrieve.k = 40;
    std::vector<funnel::Recommendation> retrieved;
    REQUIRE(model.retrieve(data.users.raw[user], retrieve, &retrieved).is_ok());
    std::vector<std::string> first;
    for (const auto& r : retrieved) first.emplace_back(r.key);
    std::vector<float> pre;
    REQUIRE(model.prerank(data.users.raw[user], options.behaviours, first, &pre).is_ok());
    const std::vector<size_t> pre_order = sorted_by(pre);
    std::vector<std::string> second;
    std::vector<float> second_retrieval;
    for (size_t i = 0; i < 12; ++i) {
      second.push_back(first[pre_order[i]]);
      second_retrieval.push_back(retrieved[pre_order[i]].score);
    }
    std::vector<float> probabilities;
    REQUIRE(model.rank(data.users.raw[user], options.behaviours, second, &probabilities).is_ok());
    const std::vector<size_t> order = sorted_by(probabilities);

    REQUIRE(result.items.size() == 4);
    for (size_t i = 0; i < 4; ++i) {
      CHECK(result.items[i].key == second[order[i]]);
      CHECK(result.items[i].score == probabilities[order[i]]);
      CHECK(result.items[i].retrieval_score == second_retrieval[order[i]]);
    }
    REQUIRE(result.stages.size() == 3);
    CHECK(result.stages[0].stage == "retrieval");
    CHECK(result.stages[0].kept == 40);
    CHECK(result.stages[1].stage == "pre_ranking");
    CHECK(result.stages[1].scored == 40);
    CHECK(result.stages[1].kept == 12);
    CHECK(result.stages[2].stage == "ranking");
    CHECK(result.stages[2].scored == 12);
    CHECK(result.stages[2].kept == 4);
    CHECK(result.stages[1].milliseconds >= 0.0);
    CHECK(result.milliseconds >= result.stages[0].milliseconds + result.stages[1].milliseconds + result.stages[2].milliseconds);
  }
}

TEST_CASE("Cascade: every subset of the stages with pre-ranking runs in order", "[cascade][pre-ranking]") {
  const Dataset& data = funnel::test::small_dataset();
  const funnel::Features& user = data.users.raw[5];
  const std::vector<std::string> behaviours = {data.items.keys[4], data.items.keys[7]};
  SECTION("retrieval then pre-ranking: the student's best k of the retrieved, its probabilities as the scores") {
    const funnel::Model& model = *files().retrieval_pre;
    CHECK_FALSE(model.has_ranking());
    CascadeOptions options;
    options.k = 6;
    options.retrieve_k = 30;
    options.behaviours = behaviours;
    CascadeResult result;
    REQUIRE(model.recommend(user, options, &result).is_ok());
    funnel::RetrieveOptions retrieve;
    retrieve.k = 30;
    std::vector<funnel::Recommendation> retrieved;
    REQUIRE(model.retrieve(user, retrieve, &retrieved).is_ok());
    std::vector<std::string> candidates;
    for (const auto& r : retrieved) candidates.emplace_back(r.key);
    std::vector<float> pre;
    REQUIRE(model.prerank(user, behaviours, candidates, &pre).is_ok());
    const std::vector<size_t> order = sorted_by(pre);
    REQUIRE(result.items.size() == 6);
    for (size_t i = 0; i < 6; ++i) {
      CHECK(result.items[i].key == candidates[order[i]]);
      CHECK(result.items[i].score == pre[order[i]]);
      CHECK(result.items[i].retrieval_score == retrieved[order[i]].score);
    }
    REQUIRE(result.stages.size() == 2);
    CHECK(result.stages[1].stage == "pre_ranking");
    CHECK(result.stages[1].scored == 30);
    CHECK(result.stages[1].kept == 6);
  }
  SECTION("pre-ranking then ranking of the caller's candidates") {
    const funnel::Model& model = *files().pre_ranking;
    CHECK_FALSE(model.has_retrieval());
    CascadeOptions options;
    options.k = 3;
    options.prerank_k = 5;
    options.behaviours = behaviours;
    for (size_t i = 10; i < 30; ++i) options.candidates.push_back(data.items.keys[i]);
    options.exclude = {data.items.keys[12]};
    CascadeResult result;
    REQUIRE(model.recommend(user, options, &result).is_ok());
    std::vector<std::string> candidates;
    for (const std::string& key : options.candidates)
      if (key != data.items.keys[12]) candidates.push_back(key);
    std::vector<float> pre;
    REQUIRE(model.prerank(user, behaviours, candidates, &pre).is_ok());
    const std::vector<size_t> pre_order = sorted_by(pre);
    std::vector<std::string> second;
    for (size_t i = 0; i < 5; ++i) second.push_back(candidates[pre_order[i]]);
    std::vector<float> probabilities;
    REQUIRE(model.rank(user, behaviours, second, &probabilities).is_ok());
    const std::vector<size_t> order = sorted_by(probabilities);
    REQUIRE(result.items.size() == 3);
    for (size_t i = 0; i < 3; ++i) {
      CHECK(result.items[i].key == second[order[i]]);
      CHECK(result.items[i].score == probabilities[order[i]]);
      CHECK(std::isnan(result.items[i].retrieval_score));
    }
    REQUIRE(result.stages.size() == 2);
    CHECK(result.stages[0].stage == "pre_ranking");
    CHECK(result.stages[0].scored == 19);
    CHECK(result.stages[0].kept == 5);
    CHECK(result.stages[1].stage == "ranking");
    CHECK(result.stages[1].scored == 5);
    CHECK(result.stages[1].kept == 3);
  }
  SECTION("pre-ranking alone ranks the caller's candidates and keeps k") {
    const funnel::Model& model = *files().pre_alone;
    CHECK_FALSE(model.has_retrieval());
    CHECK_FALSE(model.has_ranking());
    CascadeOptions options;
    options.k = 4;
    options.behaviours = behaviours;
    options.candidates = {data.items.keys[1], data.items.keys[2], data.items.keys[3], data.items.keys[5], data.items.keys[8],
                          data.items.keys[9]};
    CascadeResult result;
    REQUIRE(model.recommend(user, options, &result).is_ok());
    std::vector<float> pre;
    REQUIRE(model.prerank(user, behaviours, options.candidates, &pre).is_ok());
    const std::vector<size_t> order = sorted_by(pre);
    REQUIRE(result.items.size() == 4);
    for (size_t i = 0; i < 4; ++i) {
      CHECK(result.items[i].key == options.candidates[order[i]]);
      CHECK(result.items[i].score == pre[order[i]]);
    }
    REQUIRE(result.stages.size() == 1);
    CHECK(result.stages[0].stage == "pre_ranking");
    CHECK(result.stages[0].kept == 4);
    options.candidates.push_back("no-such-item");
    const funnel::Status status = model.recommend(user, options, &result);
    CHECK(status.code() == StatusCode::kNotFound);
    CHECK_THAT(status.message(), Catch::Contains("no-such-item"));
  }
  SECTION("pre-ranking passes on at least k") {
    const funnel::Model& model = *files().three;
    CascadeOptions options;
    options.k = 20;
    options.retrieve_k = 50;
    options.prerank_k = 8;
    CascadeResult result;
    REQUIRE(model.recommend(user, options, &result).is_ok());
    REQUIRE(result.stages.size() == 3);
    CHECK(result.stages[1].kept == 20);
    CHECK(result.items.size() == 20);
  }
  SECTION("an allow list restricts every stage") {
    const funnel::Model& model = *files().three;
    CascadeOptions options;
    options.k = 5;
    options.allow = {data.items.keys[40], data.items.keys[41], data.items.keys[42]};
    CascadeResult result;
    REQUIRE(model.recommend(user, options, &result).is_ok());
    CHECK(result.stages[0].kept == 3);
    CHECK(result.stages[1].scored == 3);
    CHECK(result.stages[2].scored == 3);
    const std::vector<std::string> keys = keys_of(result);
    CHECK(std::set<std::string>(keys.begin(), keys.end()) == std::set<std::string>(options.allow.begin(), options.allow.end()));
  }
}

TEST_CASE("Cascade: ties in pre-ranking keep the retrieval order", "[cascade][pre-ranking]") {
  // The zero student scores every item 0.5, so pre-ranking passes on the first prerank_k retrieved items in
  // retrieval order, and ranking sees exactly those.
  const Dataset& data = funnel::test::small_dataset();
  const funnel::Model& model = *files().three_tied;
  const funnel::Features& user = data.users.raw[11];
  CascadeOptions options;
  options.k = 3;
  options.retrieve_k = 30;
  options.prerank_k = 7;
  CascadeResult result;
  REQUIRE(model.recommend(user, options, &result).is_ok());
  funnel::RetrieveOptions retrieve;
  retrieve.k = 7;
  std::vector<funnel::Recommendation> retrieved;
  REQUIRE(model.retrieve(user, retrieve, &retrieved).is_ok());
  std::vector<std::string> first7;
  for (const auto& r : retrieved) first7.emplace_back(r.key);
  std::vector<float> pre;
  REQUIRE(model.prerank(user, {}, first7, &pre).is_ok());
  for (float p : pre) CHECK(p == 0.5f);
  std::vector<float> probabilities;
  REQUIRE(model.rank(user, {}, first7, &probabilities).is_ok());
  const std::vector<size_t> order = sorted_by(probabilities);
  REQUIRE(result.items.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(result.items[i].key == first7[order[i]]);
    CHECK(result.items[i].retrieval_score == retrieved[order[i]].score);
  }
}

TEST_CASE("Cascade through the C ABI with pre-ranking: prerank_k, the pre-ranking time, funnel_model_prerank",
          "[cascade][pre-ranking][c-abi]") {
  const Dataset& data = funnel::test::small_dataset();
  FunnelModel* model = nullptr;
  REQUIRE(funnel_model_load_bytes(files().three_bytes.data(), files().three_bytes.size(), &model) == FUNNEL_OK);
  CHECK(funnel_model_has_pre_ranking(model) == 1);
  FunnelFeatures* user = funnel_features_new();
  for (const auto& [name, value] : data.users.raw[6].entries()) {
    if (value.type() == funnel::FeatureValue::Type::kNumber) funnel_features_set_number(user, name.c_str(), value.number_value());
    else funnel_features_set_string(user, name.c_str(), value.string_value().c_str());
  }
  const char* behaviours[] = {data.items.keys[3].c_str(), data.items.keys[8].c_str()};
  FunnelCascadeRequest request{};
  request.k = 4;
  request.retrieve_k = 30;
  request.prerank_k = 9;
  request.behaviours = behaviours;
  request.behaviour_count = 2;
  const char* keys[4];
  size_t lengths[4], count = 0;
  float scores[4];
  FunnelCascadeTimings timings;
  REQUIRE(funnel_model_recommend(model, user, &request, keys, lengths, scores, &count, &timings) == FUNNEL_OK);
  CascadeOptions options;
  options.k = 4;
  options.retrieve_k = 30;
  options.prerank_k = 9;
  options.behaviours = {data.items.keys[3], data.items.keys[8]};
  CascadeResult expected;
  REQUIRE(files().three->recommend(data.users.raw[6], options, &expected).is_ok());
  REQUIRE(count == expected.items.size());
  for (size_t i = 0; i < count; ++i) {
    CHECK(std::string_view(keys[i], lengths[i]) == expected.items[i].key);
    CHECK(scores[i] == expected.items[i].score);
  }
  CHECK(expected.stages[1].kept == 9);
  CHECK(timings.retrieval_ms >= 0.0);
  CHECK(timings.pre_ranking_ms >= 0.0);
  CHECK(timings.ranking_ms >= 0.0);
  CHECK(timings.total_ms >= timings.retrieval_ms + timings.pre_ranking_ms + timings.ranking_ms);

  const char* candidates[] = {data.items.keys[1].c_str(), data.items.keys[2].c_str(), data.items.keys[30].c_str()};
  float probabilities[3];
  REQUIRE(funnel_model_prerank(model, user, behaviours, 2, candidates, 3, probabilities) == FUNNEL_OK);
  std::vector<float> native;
  REQUIRE(files().three->prerank(data.users.raw[6], options.behaviours,
                                 std::vector<std::string>{data.items.keys[1], data.items.keys[2], data.items.keys[30]}, &native)
              .is_ok());
  for (size_t i = 0; i < 3; ++i) CHECK(probabilities[i] == native[i]);
  const char* unknown[] = {"no-such-item"};
  CHECK(funnel_model_prerank(model, user, nullptr, 0, unknown, 1, probabilities) == FUNNEL_NOT_FOUND);
  CHECK_THAT(funnel_last_error(), Catch::Contains("no-such-item"));
  CHECK(funnel_model_prerank(model, nullptr, nullptr, 0, unknown, 1, probabilities) == FUNNEL_INVALID_ARGUMENT);
  CHECK_THAT(funnel_last_error(), Catch::Contains("funnel_model_prerank: NULL argument"));

  // A file without the stage: prerank is an error, the timing is NaN.
  FunnelModel* both = nullptr;
  REQUIRE(funnel_model_load_bytes(files().both_bytes.data(), files().both_bytes.size(), &both) == FUNNEL_OK);
  CHECK(funnel_model_has_pre_ranking(both) == 0);
  CHECK(funnel_model_prerank(both, user, behaviours, 2, candidates, 3, probabilities) == FUNNEL_INVALID_ARGUMENT);
  CHECK_THAT(funnel_last_error(), Catch::Contains("no pre-ranking stage"));
  REQUIRE(funnel_model_recommend(both, user, &request, keys, lengths, scores, &count, &timings) == FUNNEL_OK);
  CHECK(std::isnan(timings.pre_ranking_ms));
  funnel_model_free(both);
  funnel_features_free(user);
  funnel_model_free(model);
}
