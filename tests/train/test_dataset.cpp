// Reading datasets: what is read, and errors that name file, line and field.
#include <catch2/catch.hpp>

#include "train/retrieval/two_tower_config.hpp"
#include "train/data/dataset.hpp"
#include "train/core/errors.hpp"
#include "train/data/split.hpp"
#include "support.hpp"

using namespace funnel::train;
using funnel::test::TempDir;
using Catch::Matchers::Contains;

namespace {

const char* kDescription = R"({
  "name": "tiny",
  "interactions": {"path": "interactions.csv", "header": true, "user": 0, "item": 1, "timestamp": 2},
  "users": {"path": "users.csv", "header": true, "key": 0,
            "features": [{"name": "user_id", "column": 0}, {"name": "age", "column": 1, "boundaries": [30, 50]},
                         {"name": "zip", "column": 2, "prefix": 2}]},
  "items": {"path": "items.csv", "header": true, "key": 0,
            "features": [{"name": "item_id", "column": 0}, {"name": "tags", "column": 1, "kind": "multi_categorical", "separator": "|"},
                         {"name": "price", "column": 2, "kind": "dense"}]}
})";

struct TinyFiles {
  TempDir dir;
  std::string description;
  explicit TinyFiles(const std::string& interactions, const std::string& items = "item_id,tags,price\na,x|y,1.5\nb,,2.5\nc,y,4\n") {
    dir.write("users.csv", "user_id,age,zip\nu1,25,12345\nu2,61,12999\n");
    dir.write("items.csv", items);
    dir.write("interactions.csv", interactions);
    description = dir.write("dataset.json", kDescription);
  }
};

}  // namespace

TEST_CASE("Dataset: features are encoded with the SDK's rules", "[data]") {
  TinyFiles files("user_id,item_id,timestamp\nu1,a,10\nu1,b,20\nu1,c,30\nu2,c,5\n");
  const Dataset data = load_dataset(files.description);
  REQUIRE(data.users.size() == 2);
  REQUIRE(data.items.size() == 3);
  REQUIRE(data.interactions.size() == 4);
  const FeatureColumn& age = data.users.features[1];
  CHECK(age.cardinality == 4);  // OOV + 3 buckets
  CHECK(age.ids_of(0)[0] == 1);  // 25 < 30
  CHECK(age.ids_of(1)[0] == 3);  // 61 >= 50
  const FeatureColumn& zip = data.users.features[2];
  CHECK(zip.vocabulary == std::vector<std::string>{"12"});  // both zips share the prefix
  const FeatureColumn& tags = data.items.features[1];
  CHECK(tags.ids_of(0).size() == 2);
  REQUIRE(tags.ids_of(1).size() == 1);
  CHECK(tags.ids_of(1)[0] == 0);  // no tags: the out-of-vocabulary row
  const FeatureColumn& price = data.items.features[2];
  CHECK(price.mean == Approx(8.0 / 3.0));
  CHECK(price.dense[0] == Approx((1.5 - price.mean) / price.stddev));

  const Split split = leave_last_out(data);
  CHECK(split.test_item[0] == 2);        // u1's last item, c
  CHECK(split.validation_item[0] == 1);  // b
  CHECK(split.test_item[1] == -1);       // u2 has one interaction: training only
  CHECK(split.train.size() == 2);
}

TEST_CASE("Dataset: a broken row names file, line and field", "[data][errors]") {
  SECTION("too few fields") {
    TinyFiles files("user_id,item_id,timestamp\nu1,a,10\nu1,b\n");
    CHECK_THROWS_WITH(load_dataset(files.description),
                      Contains("interactions.csv:3: expected 3 fields, as on line 1 (the header), found 2"));
  }
  SECTION("a timestamp that is no integer") {
    TinyFiles files("user_id,item_id,timestamp\nu1,a,10\nu2,b,yesterday\n");
    CHECK_THROWS_WITH(load_dataset(files.description),
                      Contains("interactions.csv:3") && Contains("field 3 (timestamp)") && Contains("yesterday"));
  }
  SECTION("a timestamp out of the integers' range (found by the fuzzer: a cast out of range)") {
    for (const std::string value : {"inf", "1e30", "-1e19"}) {
      TinyFiles files("user_id,item_id,timestamp\nu1,a,10\nu2,b," + value + "\n");
      CHECK_THROWS_WITH(load_dataset(files.description),
                        Contains("interactions.csv:3: field 3 (timestamp): '" + value + "' is not an integer"));
    }
  }
  SECTION("an item missing from the items file") {
    TinyFiles files("user_id,item_id,timestamp\nu1,a,10\nu1,zzz,11\n");
    CHECK_THROWS_WITH(load_dataset(files.description), Contains("interactions.csv:3") && Contains("'zzz'") && Contains("items file"));
  }
  SECTION("a dense value that is no number") {
    TinyFiles files("user_id,item_id,timestamp\nu1,a,10\n", "item_id,tags,price\na,x,1.5\nb,y,cheap\n");
    CHECK_THROWS_WITH(load_dataset(files.description), Contains("items.csv:3") && Contains("(price)") && Contains("cheap"));
  }
  SECTION("a duplicate key") {
    TinyFiles files("user_id,item_id,timestamp\nu1,a,10\n", "item_id,tags,price\na,x,1.5\na,y,2\n");
    CHECK_THROWS_WITH(load_dataset(files.description), Contains("items.csv:3") && Contains("duplicate item key 'a'"));
  }
  SECTION("an unterminated quote") {
    TinyFiles files("user_id,item_id,timestamp\nu1,\"a,10\n");
    CHECK_THROWS_WITH(load_dataset(files.description), Contains("interactions.csv:2") && Contains("quoted"));
  }
  SECTION("a column number that is not a whole number in range (found by the fuzzer: a cast out of range)") {
    TinyFiles files("user_id,item_id,timestamp\nu1,a,10\n");
    files.dir.write("dataset.json", R"({"interactions": {"path": "interactions.csv", "user": 1e20}})");
    CHECK_THROWS_WITH(load_dataset(files.description), Contains("'interactions'") && Contains("field 'user' must be a whole number from 0 to"));
    files.dir.write("dataset.json", R"({"interactions": {"path": "interactions.csv", "timestamp": 2.5}})");
    CHECK_THROWS_WITH(load_dataset(files.description), Contains("field 'timestamp' must be a whole number from -2147483648 to 2147483647"));
  }
  SECTION("a missing file") {
    TempDir dir;
    const std::string description = dir.write("dataset.json", kDescription);
    CHECK_THROWS_WITH(load_dataset(description), Contains("interactions.csv") && Contains("cannot open"));
  }
}

TEST_CASE("Dataset: every row has the first line's field count, and a stray delimiter is an error", "[data][errors]") {
  const std::string interactions = "user_id,item_id,timestamp\nu1,a,10\nu1,b,20\nu2,c,5\n";
  SECTION("a stray delimiter that would shift the columns after it") {
    // "12,999" for the zip: without the check, zip would read "12" and the row would load.
    TinyFiles files(interactions);
    files.dir.write("users.csv", "user_id,age,zip\nu1,25,12345\nu2,61,12,999\n");
    CHECK_THROWS_WITH(load_dataset(files.description),
                      Contains("users.csv:3: expected 3 fields, as on line 1 (the header), found 4") && Contains("delimiter ','"));
  }
  SECTION("in the interactions file") {
    TinyFiles files("user_id,item_id,timestamp\nu1,a,10\n\nu1,,b,20\n");
    CHECK_THROWS_WITH(load_dataset(files.description), Contains("interactions.csv:4: expected 3 fields") && Contains("found 4"));
  }
  SECTION("without a header the first row sets the count") {
    TinyFiles files(interactions);
    files.dir.write("dataset.json", R"({"interactions": {"path": "interactions.csv", "user": 0, "item": 1}})");
    files.dir.write("interactions.csv", "u1,a\nu1,b\nu2,c,extra\n");
    CHECK_THROWS_WITH(load_dataset(files.description), Contains("interactions.csv:3: expected 2 fields, as on line 1, found 3"));
  }
  SECTION("a quoted delimiter is part of its field, and sequences vary in length") {
    TinyFiles files(interactions, "item_id,tags,price\na,\"x,y\",1.5\nb,,2.5\nc,y,4\n");
    const Dataset data = load_dataset(files.description);
    CHECK(data.items.features[1].vocabulary[0] == "x,y");
    files.dir.write("dataset.json", R"({"interactions": {"path": "sequences.txt", "format": "sequences", "delimiter": " "}})");
    files.dir.write("sequences.txt", "u1 a b c\nu2 c\n");
    CHECK(load_dataset(files.description).interactions.size() == 4);
  }
}

TEST_CASE("Dataset: a bucketized value that is not a number is an error naming file, line and field", "[data][errors]") {
  const std::string interactions = "user_id,item_id,timestamp\nu1,a,10\nu2,b,20\n";
  SECTION("a word") {
    TinyFiles files(interactions);
    files.dir.write("users.csv", "user_id,age,zip\nu1,25,12345\nu2,sixty,12999\n");
    CHECK_THROWS_WITH(load_dataset(files.description),
                      Contains("users.csv:3: field 2 (age): 'sixty' is not a number (the feature is bucketized by its boundaries)"));
  }
  SECTION("not finite") {
    TinyFiles files(interactions);
    files.dir.write("users.csv", "user_id,age,zip\nu1,nan,12345\nu2,25,12999\n");
    CHECK_THROWS_WITH(load_dataset(files.description), Contains("users.csv:2: field 2 (age): 'nan' is not a number"));
  }
  SECTION("an empty value is a missing one: out of vocabulary") {
    TinyFiles files(interactions);
    files.dir.write("users.csv", "user_id,age,zip\nu1,,12345\nu2,61,12999\n");
    const Dataset data = load_dataset(files.description);
    CHECK(data.users.features[1].ids_of(0)[0] == 0);
    CHECK(data.users.features[1].ids_of(1)[0] == 3);
  }
  SECTION("each value of a bucketized list") {
    TinyFiles files(interactions);
    files.dir.write("dataset.json", R"({"interactions": {"path": "interactions.csv", "header": true},
      "items": {"path": "items.csv", "header": true, "features": [{"name": "item_id", "column": 0},
        {"name": "sizes", "column": 1, "kind": "multi_categorical", "separator": "|", "boundaries": [10, 20]}]}})");
    files.dir.write("items.csv", "item_id,sizes\na,5|15\nb,12|large\n");
    CHECK_THROWS_WITH(load_dataset(files.description), Contains("items.csv:3: field 2 (sizes): 'large' is not a number"));
  }
  SECTION("hashing takes any value") {
    TinyFiles files(interactions);
    files.dir.write("dataset.json", R"({"interactions": {"path": "interactions.csv", "header": true},
      "users": {"path": "users.csv", "header": true, "features": [{"name": "user_id", "column": 0},
        {"name": "age", "column": 1, "boundaries": [30], "hash_buckets": 8}]}})");
    files.dir.write("users.csv", "user_id,age\nu1,sixty\nu2,25\n");
    CHECK(load_dataset(files.description).users.size() == 2);
  }
}

TEST_CASE("Config: unknown fields and bad values are refused with their name", "[config][errors]") {
  CHECK_THROWS_WITH(config_from_json(nlohmann::json{{"epochz", 3}}, "run.json"), Contains("run.json") && Contains("'epochz'"));
  CHECK_THROWS_WITH(config_from_json(nlohmann::json{{"epochs", "many"}}, "run.json"), Contains("'epochs'"));
  CHECK_THROWS_WITH(config_from_json(nlohmann::json{{"temperature", 0}}, "run.json"), Contains("temperature"));
  const TrainConfig config = config_from_json(nlohmann::json{{"epochs", 3}}, "run.json");
  CHECK(config.epochs == 3);
  CHECK(config.batch_size == TrainConfig{}.batch_size);
  CHECK(config_to_json(config)["temperature"].get<double>() == 0.05);  // written back as the decimal a person wrote
}
