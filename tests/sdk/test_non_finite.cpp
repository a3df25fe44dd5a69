// Non-finite numbers, in and out: a NaN or infinite feature value (a number, or a string such as "nan" that
// strtod reads) is refused by every call, naming the feature; a model that computes a non-finite embedding
// or score anyway (parameters or catalogue rows poisoned here in a copy of a golden file) answers with an
// error, never with the number; a catalogue update refuses an item whose embedding is not finite, naming
// it. SDK only: no trainer.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "funnel/funnel.hpp"
#include "funnel_generated.h"

using funnel::Features;
using funnel::Model;
using funnel::StatusCode;
using Catch::Matchers::Contains;

namespace {

const std::string kGolden = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/golden/";
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN(), kInf = std::numeric_limits<double>::infinity();

std::unique_ptr<Model> golden(const std::string& name) {
  std::unique_ptr<Model> model;
  REQUIRE(Model::load_file(kGolden + name, &model).is_ok());
  return model;
}

// A copy of `source` with `bytes` bytes at `target` (a pointer into source's own bytes) replaced by `value`.
std::unique_ptr<Model> poisoned(const Model& source, const void* target, const void* value, size_t bytes) {
  std::vector<uint8_t> copy(source.bytes().begin(), source.bytes().end());
  const auto offset = static_cast<size_t>(static_cast<const uint8_t*>(target) - source.bytes().data());
  REQUIRE(offset + bytes <= copy.size());
  std::memcpy(copy.data() + offset, value, bytes);
  std::unique_ptr<Model> model;
  REQUIRE(Model::load_bytes(copy.data(), copy.size(), &model).is_ok());
  return model;
}
std::unique_ptr<Model> poisoned(const Model& source, const float* target, float value) {
  return poisoned(source, target, &value, sizeof value);
}

Features user_u3() { return Features().set("user_id", "u3").set("age", 41.0).set("region", "r2").set("device", "ios"); }
Features item(const std::string& id) {
  return Features().set("item_id", id).set("category", "c1").set("price", 9.5).set("tags", std::vector<std::string>{"t1"});
}

funnel::RetrieveOptions top(size_t k, std::vector<std::string> exclude = {}) {
  funnel::RetrieveOptions options;
  options.k = k;
  options.exclude = std::move(exclude);
  return options;
}
funnel::CascadeOptions cascade(const std::vector<std::string>& behaviours, bool skip_ranking = false) {
  funnel::CascadeOptions options;
  options.behaviours = behaviours;
  options.skip_ranking = skip_ranking;
  return options;
}

void require_error(const funnel::Status& status, StatusCode code, const std::string& names) {
  INFO(status.to_string());
  REQUIRE(status.code() == code);
  REQUIRE_THAT(status.message(), Contains(names) && Contains("not a finite number"));
}

// Every call that reads the user's features, on the three-stage golden file: each must refuse `user`.
void every_user_call_refuses(const Features& user, const std::string& feature) {
  static const std::unique_ptr<Model> retrieval = golden("retrieval.funnel"), three = golden("three-stages.funnel");
  const std::string names = "feature '" + feature + "'";
  std::vector<float> embedding;
  require_error(retrieval->user_embedding(user, &embedding), StatusCode::kInvalidArgument, names);
  std::vector<funnel::Recommendation> hits;
  require_error(retrieval->retrieve(user, {}, &hits), StatusCode::kInvalidArgument, names);
  CHECK(hits.empty());
  std::vector<std::vector<funnel::Recommendation>> batch;
  const std::vector<Features> users = {user_u3(), user};
  const funnel::Status s = retrieval->retrieve_batch(users, {}, &batch);
  require_error(s, StatusCode::kInvalidArgument, "user 1: " + names);
  const std::vector<std::string> behaviours = {"i3"}, candidates = {"i5", "i9"};
  std::vector<float> probabilities;
  require_error(three->rank(user, behaviours, candidates, &probabilities), StatusCode::kInvalidArgument, names);
  require_error(three->prerank(user, behaviours, candidates, &probabilities), StatusCode::kInvalidArgument, names);
  CHECK(probabilities.empty());
  funnel::CascadeResult result;
  require_error(three->recommend(user, {}, &result), StatusCode::kInvalidArgument, names);
  CHECK(result.items.empty());
  // The same calls with the golden user still answer.
  REQUIRE(three->recommend(user_u3(), {}, &result).is_ok());
  CHECK(result.items.size() == 10);
}

}  // namespace

TEST_CASE("Non-finite input: NaN and infinities are refused by every call, naming the feature", "[non_finite]") {
  // `age` is bucketized, `user_id` a vocabulary: a number that is not finite means nothing to either.
  for (const double x : {kNaN, kInf, -kInf}) {
    INFO("age = " << x);
    every_user_call_refuses(user_u3().set("age", x), "age");
    every_user_call_refuses(user_u3().set("user_id", x), "user_id");
    CHECK(funnel::check_feature_number("age", x).code() == StatusCode::kInvalidArgument);
  }
  // Strings that strtod reads as such numbers, given to the bucketized feature.
  for (const char* text : {"nan", "NaN", "-nan", "inf", "-inf", "Infinity"}) {
    INFO("age = " << text);
    every_user_call_refuses(user_u3().set("age", text), "age");
  }
  CHECK(funnel::check_feature_number("age", 1e300).is_ok());
  CHECK(funnel::check_feature_number("age", -0.0).is_ok());
  // A string that is no number at all stays out-of-vocabulary, as before; "41" is 41.
  const std::unique_ptr<Model> model = golden("retrieval.funnel");
  std::vector<float> oov, as_text, as_number;
  REQUIRE(model->user_embedding(user_u3().set("age", "unknown"), &oov).is_ok());
  REQUIRE(model->user_embedding(user_u3().set("age", "41"), &as_text).is_ok());
  REQUIRE(model->user_embedding(user_u3(), &as_number).is_ok());
  CHECK(as_text == as_number);
}

TEST_CASE("Non-finite input: a dense feature refuses NaN, infinities, \"nan\", \"inf\" and what overflows once normalised",
          "[non_finite]") {
  const std::unique_ptr<Model> model = golden("retrieval.funnel");  // `price` is dense
  std::vector<float> embedding;
  REQUIRE(model->item_embedding(item("new"), &embedding).is_ok());
  REQUIRE(model->item_embedding(item("new").set("price", "9.5"), &embedding).is_ok());
  for (const Features& bad : {item("new").set("price", kNaN), item("new").set("price", kInf), item("new").set("price", -kInf),
                              item("new").set("price", "nan"), item("new").set("price", "inf"), item("new").set("price", "-Infinity")}) {
    require_error(model->item_embedding(bad, &embedding), StatusCode::kInvalidArgument, "feature 'price'");
    CHECK(embedding.empty());
    // A catalogue update names the item and the feature, and builds nothing.
    funnel::CatalogueUpdate update;
    update.upsert = {{"fine", item("fine")}, {"broken", bad}};
    std::unique_ptr<Model> updated;
    require_error(model->update_catalogue(update, &updated), StatusCode::kInvalidArgument, "item 'broken': feature 'price'");
    CHECK(!updated);
  }
  // Finite, but beyond a float once normalised.
  const funnel::Status s = model->item_embedding(item("new").set("price", 1e300), &embedding);
  require_error(s, StatusCode::kInvalidArgument, "feature 'price' = 1e+300 once normalised");
}

TEST_CASE("Non-finite output: an embedding that is not finite is an error, and a catalogue update refuses its item",
          "[non_finite]") {
  const std::unique_ptr<Model> source = golden("retrieval.funnel");
  // NaN in the towers' last layer reaches every output (ReLU would hide it in an earlier one: NaN > 0 is false).
  const std::unique_ptr<Model> bad_user = poisoned(*source, source->user_tower().layers.back().weight, NAN);
  std::vector<float> embedding;
  require_error(bad_user->user_embedding(user_u3(), &embedding), StatusCode::kInvalidArgument, "of the user embedding");
  CHECK(embedding.empty());
  std::vector<funnel::Recommendation> hits;
  require_error(bad_user->retrieve(user_u3(), {}, &hits), StatusCode::kInvalidArgument, "of the user embedding");
  CHECK(hits.empty());  // not rows 0..k-1 with NaN scores
  std::vector<std::vector<funnel::Recommendation>> batch;
  const std::vector<Features> users = {user_u3()};
  require_error(bad_user->retrieve_batch(users, {}, &batch), StatusCode::kInvalidArgument, "user 0: dimension 0 of the user embedding");
  funnel::CascadeResult result;
  require_error(bad_user->recommend(user_u3(), {}, &result), StatusCode::kInvalidArgument, "of the user embedding");
  REQUIRE(bad_user->item_embedding(item("new"), &embedding).is_ok());  // the item tower is untouched

  const std::unique_ptr<Model> bad_item = poisoned(*source, source->item_tower().layers.back().weight, NAN);
  require_error(bad_item->item_embedding(item("new"), &embedding), StatusCode::kInvalidArgument, "of the item embedding");
  funnel::CatalogueUpdate update;
  update.upsert = {{"brand-new", item("brand-new")}};
  std::unique_ptr<Model> updated;
  require_error(bad_item->update_catalogue(update, &updated), StatusCode::kInvalidArgument, "item 'brand-new': dimension 0 of the item embedding");
  CHECK(!updated);
  // Its stored catalogue still serves, and removing an item needs no embedding.
  REQUIRE(bad_item->retrieve(user_u3(), {}, &hits).is_ok());
  update.upsert.clear();
  update.remove = {"i2"};
  REQUIRE(bad_item->update_catalogue(update, &updated).is_ok());
}

TEST_CASE("Non-finite output: an f16 catalogue update refuses a finite component beyond the half range, naming the item",
          "[non_finite]") {
  // retrieval-f16.funnel with an item tower that does not L2-normalise and a last bias of 1e6: the new item's
  // embedding is finite, but component 0 has no f16 value (the largest is 65504) and would be stored as +inf.
  const std::unique_ptr<Model> source = golden("retrieval-f16.funnel");
  REQUIRE(source->catalogue_precision() == funnel::Precision::kF16);
  std::unique_ptr<funnel::fb::ModelT> edit(funnel::fb::GetModel(source->bytes().data())->UnPack());
  edit->retrieval->item_tower->l2_normalize = false;
  funnel::fb::TensorT& bias = *edit->tensors[edit->retrieval->item_tower->layers.back()->bias];
  const float big = 1e6f;
  std::memcpy(bias.data.data(), &big, sizeof big);
  bias.checksum = flatbuffers::nullopt;  // declared format 2 without a whole-file checksum: the rest still verifies
  edit->checksum = flatbuffers::nullopt;
  edit->format_version = 2;
  flatbuffers::FlatBufferBuilder builder;
  funnel::fb::FinishModelBuffer(builder, funnel::fb::Model::Pack(builder, edit.get()));
  std::unique_ptr<Model> model;
  REQUIRE(Model::load_bytes(builder.GetBufferPointer(), builder.GetSize(), &model).is_ok());
  std::vector<float> embedding;
  REQUIRE(model->item_embedding(item("brand-new"), &embedding).is_ok());
  REQUIRE(std::isfinite(embedding[0]));
  REQUIRE(std::fabs(embedding[0]) > 65504.0f);
  funnel::CatalogueUpdate update;
  update.upsert = {{"brand-new", item("brand-new")}};
  std::unique_ptr<Model> updated;
  const funnel::Status status = model->update_catalogue(update, &updated);
  INFO(status.to_string());
  CHECK(status.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(status.message(), Contains("item 'brand-new': embedding component 0") && Contains("f16"));
  CHECK(!updated);
}

TEST_CASE("Non-finite output: a catalogue row that scores a non-finite number is an error naming the row", "[non_finite]") {
  for (const char* name : {"retrieval.funnel", "retrieval-f16.funnel", "retrieval-int8.funnel"}) {
    INFO(name);
    const std::unique_ptr<Model> source = golden(name);
    std::vector<float> query;
    REQUIRE(source->user_embedding(user_u3(), &query).is_ok());
    const size_t row = 7, dim = source->embedding_dim();
    size_t d = 0;
    while (d < dim && query[d] == 0.0f) ++d;
    REQUIRE(d < dim);
    // An infinity of the query's sign in row 7: that row scores +inf, above every finite row, so it is the
    // first hit of any request. In an int8 file the exact rows, which re-score the shortlist, carry it.
    std::unique_ptr<Model> model;
    const float inf = std::copysign(std::numeric_limits<float>::infinity(), query[d]);
    if (source->catalogue_precision() == funnel::Precision::kF16) {
      const uint16_t half = query[d] > 0 ? 0x7C00 : 0xFC00;
      model = poisoned(*source, static_cast<const uint16_t*>(source->catalogue_rows().data) + row * dim + d, &half, sizeof half);
    } else {
      REQUIRE(source->catalogue_embeddings() != nullptr);
      model = poisoned(*source, source->catalogue_embeddings() + row * dim + d, inf);
    }
    std::vector<funnel::Recommendation> hits;
    require_error(model->retrieve(user_u3(), top(1), &hits), StatusCode::kCorruptModel, "the score of row 7 is inf");
    CHECK(hits.empty());
    std::vector<std::vector<funnel::Recommendation>> batch;
    const std::vector<Features> users = {user_u3(), user_u3()};
    require_error(model->retrieve_batch(users, top(3), &batch), StatusCode::kCorruptModel, "query 0: the score of row 7 is inf");
    funnel::CascadeResult result;
    require_error(model->recommend(user_u3(), {}, &result), StatusCode::kCorruptModel, "row 7");
    // Left out, the row is never scored into an answer.
    REQUIRE(model->retrieve(user_u3(), top(5, {"i7"}), &hits).is_ok());
    REQUIRE(hits.size() == 5);
    for (const auto& hit : hits) CHECK(std::isfinite(hit.score));
  }
  // A NaN row ranks below every finite one: an answer reaches it only when k takes in the whole catalogue.
  const std::unique_ptr<Model> source = golden("retrieval.funnel");
  const std::unique_ptr<Model> model = poisoned(*source, source->catalogue_embeddings() + 7 * source->embedding_dim(), NAN);
  std::vector<funnel::Recommendation> hits, expected;
  REQUIRE(model->retrieve(user_u3(), top(10), &hits).is_ok());
  REQUIRE(source->retrieve(user_u3(), top(10, {"i7"}), &expected).is_ok());
  REQUIRE(hits.size() == expected.size());
  for (size_t i = 0; i < hits.size(); ++i) CHECK((hits[i].index == expected[i].index && hits[i].score == expected[i].score));
  const funnel::Status s = model->retrieve(user_u3(), top(model->catalogue_size()), &hits);
  require_error(s, StatusCode::kCorruptModel, "the score of row 7");
}

TEST_CASE("Non-finite output: a ranking or pre-ranking logit that is not finite is an error naming the candidate", "[non_finite]") {
  const std::unique_ptr<Model> source = golden("three-stages.funnel");
  const std::vector<std::string> behaviours = {"i3", "i8"}, candidates = {"i5", "i9", "i0"};
  std::vector<float> probabilities;
  funnel::CascadeResult result;
  const std::unique_ptr<Model> bad_ranking = poisoned(*source, source->ranker().layers.back().weight, NAN);
  require_error(bad_ranking->rank(user_u3(), behaviours, candidates, &probabilities), StatusCode::kInvalidArgument,
                "the ranking logit of candidate 'i5'");
  CHECK(probabilities.empty());
  require_error(bad_ranking->recommend(user_u3(), cascade(behaviours), &result), StatusCode::kInvalidArgument, "the ranking logit");
  REQUIRE(bad_ranking->prerank(user_u3(), behaviours, candidates, &probabilities).is_ok());
  REQUIRE(bad_ranking->recommend(user_u3(), cascade(behaviours, true), &result).is_ok());

  const std::unique_ptr<Model> bad_pre_ranking = poisoned(*source, source->pre_ranker().layers.back().weight, NAN);
  require_error(bad_pre_ranking->prerank(user_u3(), behaviours, candidates, &probabilities), StatusCode::kInvalidArgument,
                "the pre-ranking logit of candidate 'i5'");
  require_error(bad_pre_ranking->recommend(user_u3(), cascade(behaviours), &result), StatusCode::kInvalidArgument,
                "the pre-ranking logit");
  REQUIRE(bad_pre_ranking->rank(user_u3(), behaviours, candidates, &probabilities).is_ok());
  for (float p : probabilities) CHECK((p > 0.0f && p < 1.0f));
}

TEST_CASE("search(): a query that is not finite is InvalidArgument, a hit that is not finite CorruptModel", "[non_finite][search]") {
  std::vector<float> data = {1, 0, 2, 0, 1, 0, 2, 0, 0, 1};  // 5 rows x 2
  const funnel::EmbeddingRows rows{funnel::Precision::kF32, data.data(), nullptr, 5, 2};
  funnel::SearchOptions options;
  options.k = 2;
  std::vector<funnel::Hit> hits;
  const float nan_query[2] = {1, NAN}, inf_query[2] = {-INFINITY, 0};
  require_error(funnel::search(rows, nan_query, options, &hits), StatusCode::kInvalidArgument, "dimension 1 of the query");
  require_error(funnel::search(rows, inf_query, options, &hits), StatusCode::kInvalidArgument, "dimension 0 of the query is -inf");
  CHECK(hits.empty());
  const float queries[6] = {1, 0, 0, 1, 0, NAN};
  std::vector<std::vector<funnel::Hit>> batch;
  require_error(funnel::search_batch(rows, queries, 3, options, &batch), StatusCode::kInvalidArgument, "dimension 1 of query 2");
  REQUIRE(funnel::search_batch(rows, queries, 2, options, &batch).is_ok());
  CHECK((batch[0][0].index == 1 && batch[1][0].index == 4));
  // A row holding NaN: never a hit while k leaves it out; an error once k takes it in.
  data[6] = NAN;  // row 3
  REQUIRE(funnel::search(rows, queries, options, &hits).is_ok());
  CHECK((hits.size() == 2 && hits[0].index == 1 && hits[1].index == 0));
  options.k = 5;
  require_error(funnel::search(rows, queries, options, &hits), StatusCode::kCorruptModel, "the score of row 3");
  CHECK(hits.empty());
  require_error(funnel::search_batch(rows, queries, 2, options, &batch), StatusCode::kCorruptModel, "query 0: the score of row 3");
}
