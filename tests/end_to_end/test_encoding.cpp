// Raw values -> ids: the rules shared by the trainer and the SDK, and the request errors.
#include <catch2/catch.hpp>

#include "funnel/funnel.hpp"
#include "support.hpp"

using namespace funnel;
using Catch::Matchers::Contains;

TEST_CASE("Encoding rules", "[encoding]") {
  CHECK(number_to_key(196) == "196");
  CHECK(number_to_key(-3) == "-3");
  CHECK(number_to_key(2.5) == "2.5");
  const std::vector<float> boundaries = {18, 25, 35};
  CHECK(bucketize(boundaries, 10) == 1);
  CHECK(bucketize(boundaries, 18) == 2);  // a boundary opens its bucket
  CHECK(bucketize(boundaries, 34.9) == 3);
  CHECK(bucketize(boundaries, 99) == 4);
  CHECK(bucketize(boundaries, std::nan("")) == 0);
  CHECK(hash_bucket("abc", 10) == hash_bucket("abc", 10));
  CHECK(hash_bucket("abc", 10) >= 1);
  CHECK(hash_bucket("abc", 10) <= 10);
  CHECK(key_prefix("55105", 3) == "551");
  CHECK(key_prefix("V3N", 5) == "V3N");
  CHECK(split_values("a||b|", "|") == std::vector<std::string_view>{"a", "b"});
  double x = 0;
  CHECK(parse_number("12.5", &x));
  CHECK(x == 12.5);
  CHECK_FALSE(parse_number("12abc", &x));
  CHECK_FALSE(parse_number("", &x));
}

TEST_CASE("Requests: missing, unknown and mistyped features are errors that name them", "[encoding][errors]") {
  const auto bytes = test::small_model_bytes();
  std::unique_ptr<Model> model;
  REQUIRE(Model::load_bytes(bytes.data(), bytes.size(), &model).is_ok());
  std::vector<float> embedding;
  Features user = test::small_dataset().users.raw[0];
  REQUIRE(model->user_embedding(user, &embedding).is_ok());

  Features missing;
  missing.set("user_id", "u0").set("age", 30.0).set("region", "r1");
  const Status no_device = model->user_embedding(missing, &embedding);
  CHECK(no_device.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(no_device.message(), Contains("missing feature 'device'"));

  Features typo = user;
  typo.set("regoin", "r1");
  const Status unknown = model->user_embedding(typo, &embedding);
  CHECK(unknown.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(unknown.message(), Contains("'regoin'") && Contains("region"));

  Features listed = user;
  listed.set("region", std::vector<std::string>{"r1", "r2"});
  CHECK_THAT(model->user_embedding(listed, &embedding).message(), Contains("'region'") && Contains("list"));

  // Item features are features of the model: passing them with a user request is allowed.
  Features with_item = user;
  with_item.set("category", "c1");
  CHECK(model->user_embedding(with_item, &embedding).is_ok());
}

TEST_CASE("Requests: unseen values map to the out-of-vocabulary id", "[encoding]") {
  const auto bytes = test::small_model_bytes();
  std::unique_ptr<Model> model;
  REQUIRE(Model::load_bytes(bytes.data(), bytes.size(), &model).is_ok());
  Features user = test::small_dataset().users.raw[0];
  user.set("user_id", "a-user-never-seen").set("age", "not a number");
  EncodedFeatures encoded;
  REQUIRE(model->encode(user, model->user_tower(), &encoded).is_ok());
  CHECK(encoded.ids_of(static_cast<size_t>(model->feature_index("user_id")))[0] == 0);
  CHECK(encoded.ids_of(static_cast<size_t>(model->feature_index("age")))[0] == 0);
}
