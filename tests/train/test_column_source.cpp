// Datasets from columns in memory (train/data/column_source.hpp): the same tables as from files holding the
// same text, and errors that name the table, the row and the column.
#include <catch2/catch.hpp>

#include "support.hpp"
#include "train/core/errors.hpp"
#include "train/data/column_source.hpp"
#include "train/data/dataset.hpp"

using namespace funnel::train;
using funnel::test::TempDir;
using Catch::Matchers::Contains;

namespace {

std::vector<FeatureDef> user_features() {
  return parse_feature_defs(nlohmann::json::parse(R"({"features": [{"name": "user_id", "column": 0},
      {"name": "age", "column": 1, "boundaries": [30, 50]}, {"name": "zip", "column": 2, "prefix": 2}]})"),
                            "users");
}

std::vector<FeatureDef> item_features() {
  return parse_feature_defs(nlohmann::json::parse(R"({"features": [{"name": "item_id", "column": 0},
      {"name": "tags", "column": 1, "kind": "multi_categorical", "separator": "|"}, {"name": "price", "column": 2, "kind": "dense"}]})"),
                            "items");
}

ColumnDataset tiny_columns() {
  ColumnDataset source;
  source.name = "tiny";
  source.interactions.table = {"interactions", {"user_id", "item_id", "timestamp"},
                               {{"u1", "u1", "u1", "u2"}, {"a", "b", "c", "c"}, {"10", "20", "30", "5"}}};
  source.interactions.timestamp = 2;
  source.users = EntityColumns{{"users", {"user_id", "age", "zip"}, {{"u1", "u2"}, {"25", "61"}, {"12345", "12999"}}}, 0, user_features()};
  source.items = EntityColumns{{"items", {"item_id", "tags", "price"}, {{"a", "b", "c"}, {"x|y", "", "y"}, {"1.5", "2.5", "4"}}}, 0,
                               item_features()};
  return source;
}

void check_same_table(const EntityTable& a, const EntityTable& b) {
  CHECK(a.keys == b.keys);
  REQUIRE(a.features.size() == b.features.size());
  for (size_t f = 0; f < a.features.size(); ++f) {
    CHECK(a.features[f].def.name == b.features[f].def.name);
    CHECK(a.features[f].vocabulary == b.features[f].vocabulary);
    CHECK(a.features[f].cardinality == b.features[f].cardinality);
    CHECK(a.features[f].offsets == b.features[f].offsets);
    CHECK(a.features[f].ids == b.features[f].ids);
    CHECK(a.features[f].dense == b.features[f].dense);
  }
}

}  // namespace

TEST_CASE("Column source: the same dataset as from files with the same text", "[data]") {
  TempDir dir;
  dir.write("users.csv", "user_id,age,zip\nu1,25,12345\nu2,61,12999\n");
  dir.write("items.csv", "item_id,tags,price\na,x|y,1.5\nb,,2.5\nc,y,4\n");
  dir.write("interactions.csv", "user_id,item_id,timestamp\nu1,a,10\nu1,b,20\nu1,c,30\nu2,c,5\n");
  const std::string description = dir.write("dataset.json", R"({"name": "tiny",
    "interactions": {"path": "interactions.csv", "header": true, "user": 0, "item": 1, "timestamp": 2},
    "users": {"path": "users.csv", "header": true, "key": 0, "features": [{"name": "user_id", "column": 0},
      {"name": "age", "column": 1, "boundaries": [30, 50]}, {"name": "zip", "column": 2, "prefix": 2}]},
    "items": {"path": "items.csv", "header": true, "key": 0, "features": [{"name": "item_id", "column": 0},
      {"name": "tags", "column": 1, "kind": "multi_categorical", "separator": "|"}, {"name": "price", "column": 2, "kind": "dense"}]}})");
  const Dataset files = load_dataset(description);
  const Dataset columns = dataset_from_columns(tiny_columns());
  CHECK(columns.name == files.name);
  check_same_table(columns.users, files.users);
  check_same_table(columns.items, files.items);
  REQUIRE(columns.interactions.size() == files.interactions.size());
  for (size_t i = 0; i < files.interactions.size(); ++i) {
    CHECK(columns.interactions[i].user == files.interactions[i].user);
    CHECK(columns.interactions[i].item == files.interactions[i].item);
    CHECK(columns.interactions[i].timestamp == files.interactions[i].timestamp);
  }

  SECTION("without entity tables: one feature from the keys, in order of first appearance, row order as time") {
    ColumnDataset source = tiny_columns();
    source.users.reset();
    source.items.reset();
    source.interactions.timestamp = -1;
    const Dataset keys_only = dataset_from_columns(source);
    REQUIRE(keys_only.users.features.size() == 1);
    CHECK(keys_only.users.features[0].def.name == "user_id");
    CHECK(keys_only.items.keys == std::vector<std::string>{"a", "b", "c"});
    CHECK(keys_only.interactions[3].timestamp == 3);
  }
}

TEST_CASE("Column source: errors name the table, the row and the column", "[data]") {
  ColumnDataset source = tiny_columns();
  SECTION("a key missing from the users table") {
    source.interactions.table.values[0][3] = "u9";
    CHECK_THROWS_WITH(dataset_from_columns(source), Contains("interactions row 3: column 'user_id' (user): key 'u9' is not in the users table"));
  }
  SECTION("a timestamp that is no integer") {
    source.interactions.table.values[2][1] = "soon";
    CHECK_THROWS_WITH(dataset_from_columns(source), Contains("interactions row 1: column 'timestamp' (timestamp): 'soon' is not an integer"));
  }
  SECTION("a timestamp beyond int64_t (its cast would be undefined)") {
    for (const char* text : {"1e30", "inf", "-inf", "nan", "9.3e18"}) {
      source.interactions.table.values[2][1] = text;
      CHECK_THROWS_WITH(dataset_from_columns(source),
                        Contains(std::string("interactions row 1: column 'timestamp' (timestamp): '") + text + "' is not an integer"));
    }
  }
  SECTION("a dense value that is no number") {
    source.items->table.values[2][2] = "cheap";
    CHECK_THROWS_WITH(dataset_from_columns(source), Contains("items row 2: field 3 (price): 'cheap' is not a number"));
  }
  SECTION("ragged columns") {
    source.users->table.values[1].pop_back();
    CHECK_THROWS_AS(dataset_from_columns(source), DataError);
    CHECK_THROWS_WITH(dataset_from_columns(source), Contains("users: column 'age' has 1 rows"));
  }
  SECTION("a duplicate key") {
    source.users->table.values[0][1] = "u1";
    CHECK_THROWS_WITH(dataset_from_columns(source), Contains("users row 1: duplicate user key 'u1'"));
  }
  SECTION("a named column that does not exist") {
    CHECK_THROWS_WITH(source.interactions.table.index("when"), Contains("interactions: no column 'when' (it has user_id, item_id, timestamp)"));
  }
}
