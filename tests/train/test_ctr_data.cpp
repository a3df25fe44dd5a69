// CTR instances: the DIN protocol on time-ordered interactions, the DIEN/CAN file reader, and the
// reference's instance counts on Amazon Beauty.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "train/data/ctr_data.hpp"
#include "train/core/errors.hpp"
#include "support.hpp"

using namespace funnel::train;
using funnel::test::TempDir;
using Catch::Matchers::Contains;

namespace {

// u1's c and d share a time: d comes first in the file (although c is the earlier item row), so d is first.
// u2 has 2 interactions (skipped); u3 has exactly 3 (no training instance).
const char* kInteractions =
    "user,item,time\n"
    "u1,e,40\nu1,a,10\nu2,a,5\nu1,d,30\nu3,g,1\nu1,c,30\nu1,b,20\nu3,h,2\nu1,f,50\nu2,b,6\nu3,i,3\n";

struct CtrFiles {
  TempDir dir;
  std::string description;
  explicit CtrFiles(const std::string& interactions = kInteractions,
                    const std::string& items = "item\na\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\nl\n") {
    dir.write("interactions.csv", interactions);
    dir.write("items.csv", items);
    description = dir.write("dataset.json", R"({
      "interactions": {"path": "interactions.csv", "header": true, "user": 0, "item": 1, "timestamp": 2},
      "items": {"path": "items.csv", "header": true, "key": 0, "features": [{"name": "item_id", "column": 0}]}})");
  }
};

std::string history_text(const Dataset& data, const CtrInstances& instances, uint32_t history) {
  std::string text;
  for (uint32_t i = instances.history_offsets[history]; i < instances.history_offsets[history + 1]; ++i)
    text += data.items.keys[instances.history_items[i]];
  return text;
}

// One string per positive: "user target history", in instance order.
std::vector<std::string> positives(const Dataset& data, const CtrInstances& instances, const CtrSplit& split) {
  std::vector<std::string> out;
  for (size_t i = 0; i < split.size(); ++i)
    if (split.label[i] == 1.0f)
      out.push_back(data.users.keys[split.user[i]] + " " + data.items.keys[split.target[i]] + " " +
                    history_text(data, instances, split.history[i]));
  return out;
}

std::set<uint32_t> items_of(const Dataset& data, uint32_t user) {
  std::set<uint32_t> items;
  for (const Interaction& x : data.interactions)
    if (x.user == user) items.insert(x.item);
  return items;
}

}  // namespace

TEST_CASE("CTR instances: positions, histories and splits follow the DIN protocol", "[ctr_data]") {
  CtrFiles files;
  const Dataset data = load_dataset(files.description);
  CtrOptions options;
  options.max_history = 2;
  const CtrInstances instances = build_ctr_instances(data, options);

  CHECK(positives(data, instances, instances.train) == std::vector<std::string>{"u1 b a", "u1 d ab", "u1 c bd"});
  CHECK(positives(data, instances, instances.validation) == std::vector<std::string>{"u1 e dc", "u3 h g"});
  CHECK(positives(data, instances, instances.test) == std::vector<std::string>{"u1 f ce", "u3 i gh"});
  CHECK(instances.history_count() == 7);  // one per positive

  for (const CtrSplit* split : {&instances.train, &instances.validation, &instances.test}) {
    REQUIRE(split->size() % 2 == 0);
    for (size_t i = 0; i < split->size(); i += 2) {  // a positive, then its negative
      CHECK(split->label[i] == 1.0f);
      CHECK(split->label[i + 1] == 0.0f);
      CHECK(split->history[i + 1] == split->history[i]);
      CHECK(split->user[i + 1] == split->user[i]);
    }
  }

  options.max_history = 50;
  const CtrInstances full = build_ctr_instances(data, options);
  CHECK(positives(data, full, full.test) == std::vector<std::string>{"u1 f abdce", "u3 i gh"});
  CHECK(load_ctr_dataset(files.description, "", options).instances.test.target == full.test.target);
}

TEST_CASE("CTR instances: negatives are seeded, uniform over the user's unseen items, k per positive", "[ctr_data]") {
  CtrFiles files;
  const Dataset data = load_dataset(files.description);
  CtrOptions options;
  options.negatives = 50;
  const CtrInstances instances = build_ctr_instances(data, options);
  CHECK(instances.train.size() == 3 * 51);
  CHECK(instances.validation.size() == 2 * 51);
  CHECK(instances.test.size() == 2 * 51);

  std::set<uint32_t> u1_negatives;
  for (const CtrSplit* split : {&instances.train, &instances.validation, &instances.test}) {
    CHECK(std::count(split->label.begin(), split->label.end(), 1.0f) * 51 == static_cast<std::ptrdiff_t>(split->size()));
    for (size_t i = 0; i < split->size(); ++i) {
      if (split->label[i] == 1.0f) continue;
      CHECK(items_of(data, split->user[i]).count(split->target[i]) == 0);  // never an item of the user, at any time
      if (data.users.keys[split->user[i]] == "u1") u1_negatives.insert(split->target[i]);
    }
  }
  CHECK(u1_negatives.size() == 6);  // 350 draws reach every one of the 12 - 6 items u1 never touched

  const CtrInstances again = build_ctr_instances(data, options);
  CHECK(again.train.target == instances.train.target);
  CHECK(again.test.target == instances.test.target);
  options.data_seed = 1;
  const CtrInstances other = build_ctr_instances(data, options);
  CHECK(other.train.target != instances.train.target);
  CHECK(other.train.label == instances.train.label);
}

TEST_CASE("CTR instances: bad options and a user without negatives are refused", "[ctr_data][errors]") {
  CtrFiles files;
  const Dataset data = load_dataset(files.description);
  CtrOptions options;
  options.max_history = 0;
  CHECK_THROWS_AS(build_ctr_instances(data, options), ConfigError);
  options = {};
  options.negatives = 0;
  CHECK_THROWS_AS(build_ctr_instances(data, options), ConfigError);
  CHECK_THROWS_AS(load_ctr_dataset(files.description, "", options), ConfigError);

  CtrFiles everything("user,item,time\nu1,a,1\nu1,b,2\nu1,c,3\nu2,a,1\n", "item\na\nb\nc\n");
  CHECK_THROWS_WITH(build_ctr_instances(load_dataset(everything.description), {}),
                    Contains("'u1'") && Contains("every item"));
}

TEST_CASE("Dataset: the 'first' rule keeps the part before the first separator", "[ctr_data][data]") {
  TempDir dir;
  dir.write("interactions.csv", "u1,a\nu1,b\nu1,c\n");
  dir.write("items.csv", "a,7|8|9\nb,\nc,8\n");
  const std::string description = dir.write("dataset.json", R"({
    "interactions": {"path": "interactions.csv"},
    "items": {"path": "items.csv", "features": [{"name": "item_id", "column": 0}, {"name": "category", "column": 1, "first": "|"}]}})");
  const Dataset data = load_dataset(description);
  const FeatureColumn& category = data.items.features[1];
  CHECK(category.vocabulary == std::vector<std::string>{"7", "8"});
  CHECK(category.cardinality == 3);
  CHECK(category.ids_of(0)[0] == 1);
  CHECK(category.ids_of(1)[0] == 0);  // an empty field has no first part: out of vocabulary
  CHECK(category.ids_of(2)[0] == 2);
  CHECK(data.items.raw[0].find("category")->string_value() == "7");  // what an application passes to the SDK
}

namespace {

// DIEN rows written with '^' for the \x02 that joins history entries.
struct DienFiles {
  TempDir dir;
  std::string description;
  DienFiles(std::string train, std::string test) {
    std::replace(train.begin(), train.end(), '^', '\x02');
    std::replace(test.begin(), test.end(), '^', '\x02');
    dir.write("local_train", train);
    dir.write("local_test", test);
    description = dir.write("dien.json", R"({"name": "dien", "format": "dien", "train": "local_train", "test": "local_test"})");
  }
};

}  // namespace

TEST_CASE("DIEN reader: rows become users, items and instances", "[ctr_data]") {
  // CRLF lines, an empty history, and m2 seen again with another category.
  DienFiles files(
      "1\tU1\tm1\tc1\tm2^m3\tc2^c3\r\n"
      "0\tU1\tm4\tc4\tm2^m3\tc2^c3\r\n"
      "1\tU2\tm2\tc9\t\t\r\n",
      "1\tU1\tm5\tc5\tm2^m3^m1\tc2^c3^c1\n");
  CtrOptions options;
  options.max_history = 2;
  const CtrDataset ctr = load_ctr_dataset(files.description, "", options);
  const Dataset& data = ctr.data;
  const CtrInstances& instances = ctr.instances;
  CHECK(data.name == "dien");
  CHECK(data.users.keys == std::vector<std::string>{"U1", "U2"});
  CHECK(data.items.keys == std::vector<std::string>{"m1", "m2", "m3", "m4", "m5"});
  REQUIRE(data.items.features.size() == 2);
  const FeatureColumn& category = data.items.features[1];
  CHECK(category.def.name == "category");
  CHECK(category.vocabulary == std::vector<std::string>{"c1", "c2", "c3", "c4", "c5"});  // m2 keeps c2; c9 is never used
  CHECK(category.ids_of(1)[0] == 2);

  CHECK(instances.train.label == std::vector<float>{1, 0, 1});
  CHECK(instances.train.user == std::vector<uint32_t>{0, 0, 1});
  CHECK(instances.train.target == std::vector<uint32_t>{0, 3, 1});
  CHECK(instances.train.history[0] == instances.train.history[1]);  // a positive and its negative share a history
  CHECK(history_text(data, instances, instances.train.history[0]) == "m2m3");
  CHECK(history_text(data, instances, instances.train.history[2]).empty());
  CHECK(instances.validation.size() == 0);
  REQUIRE(instances.test.size() == 1);
  CHECK(history_text(data, instances, instances.test.history[0]) == "m3m1");  // the last max_history
  CHECK(instances.history_count() == 3);
}

TEST_CASE("DIEN reader: an optional validation file gives the validation split", "[ctr_data]") {
  DienFiles files("1\tU1\tm1\tc1\tm2\tc2\n", "1\tU1\tm3\tc3\tm2^m1\tc2^c1\n");
  files.dir.write("local_valid", "1\tU1\tm4\tc4\tm2\tc2\n0\tU1\tm5\tc5\tm2\tc2\n");
  const std::string description = files.dir.write(
      "with-validation.json", R"({"name": "dien", "format": "dien", "train": "local_train", "validation": "local_valid", "test": "local_test"})");
  const CtrDataset ctr = load_ctr_dataset(description, "", {});
  CHECK(ctr.instances.train.size() == 1);
  REQUIRE(ctr.instances.validation.size() == 2);
  CHECK(ctr.instances.validation.label == std::vector<float>{1, 0});
  CHECK(ctr.data.items.keys[ctr.instances.validation.target[1]] == "m5");
  CHECK(ctr.instances.test.size() == 1);
}

TEST_CASE("DIEN reader: a broken row names file, line and field", "[ctr_data][errors]") {
  const std::string good = "1\tU1\tm1\tc1\tm2\tc2\n";
  SECTION("a label that is not 0 or 1") {
    DienFiles files(good + "2\tU1\tm1\tc1\tm2\tc2\n", good);
    CHECK_THROWS_WITH(load_ctr_dataset(files.description, "", {}),
                      Contains("local_train:2") && Contains("field 1 (label)") && Contains("'2'"));
  }
  SECTION("histories of different lengths") {
    DienFiles files(good, good + good + "0\tU1\tm1\tc1\tm2^m3\tc2\n");
    CHECK_THROWS_WITH(load_ctr_dataset(files.description, "", {}), Contains("local_test:3") && Contains("field 6 (cat_history)"));
  }
  SECTION("an empty history item") {
    DienFiles files("1\tU1\tm1\tc1\tm2^\tc2^c3\r\n", good);
    CHECK_THROWS_WITH(load_ctr_dataset(files.description, "", {}), Contains("local_train:1") && Contains("field 5 (mid_history)"));
  }
  SECTION("a missing field") {
    DienFiles files(good, "1\tU1\tm1\tc1\tm2\n");
    CHECK_THROWS_WITH(load_ctr_dataset(files.description, "", {}), Contains("local_test:1") && Contains("found 5"));
  }
  SECTION("an empty uid") {
    DienFiles files("1\t\tm1\tc1\tm2\tc2\n", good);
    CHECK_THROWS_WITH(load_ctr_dataset(files.description, "", {}), Contains("local_train:1") && Contains("field 2 (uid)"));
  }
  SECTION("a description without its test file, or with another format") {
    TempDir dir;
    CHECK_THROWS_WITH(load_ctr_dataset(dir.write("a.json", R"({"format": "dien", "train": "t"})"), "", {}), Contains("'test'"));
    CHECK_THROWS_WITH(load_ctr_dataset(dir.write("b.json", R"({"format": "DIEN"})"), "", {}), Contains("unknown dataset format"));
  }
}

TEST_CASE("Amazon Beauty: CTR instance counts match the reference", "[ctr_data][real-data]") {
  const std::string root = funnel::test::shared_data("amazon-beauty-s3rec");
  if (root.empty()) {
    WARN("skipped: ../shared/data/amazon-beauty-s3rec is absent (research-only data, never in the repository)");
    return;
  }
  const CtrDataset ctr = load_ctr_dataset(std::string(FUNNEL_SOURCE_DIR) + "/datasets/amazon-beauty-ctr.json", root, {});
  const CtrInstances& instances = ctr.instances;
  CHECK(instances.train.size() == 262826);
  CHECK(instances.validation.size() == 44726);
  CHECK(instances.test.size() == 44726);
  CHECK(std::count(instances.train.label.begin(), instances.train.label.end(), 1.0f) == 131413);
  CHECK(instances.history_count() == 131413 + 22363 + 22363);
  const FeatureColumn& category = ctr.data.items.features[1];
  CHECK(category.def.name == "category");
  CHECK(category.vocabulary.size() == 443);  // distinct first attributes, plus the out-of-vocabulary id
  CHECK(category.cardinality == 444);
  uint32_t longest = 0;
  for (size_t h = 0; h < instances.history_count(); ++h)
    longest = std::max(longest, instances.history_offsets[h + 1] - instances.history_offsets[h]);
  CHECK(longest == 50);
}

TEST_CASE("Amazon Books, DIEN format: the tiny fixture loads", "[ctr_data][real-data]") {
  const std::string root = funnel::test::shared_data("amazon-books-dien-format-tiny");
  if (root.empty()) {
    WARN("skipped: ../shared/data/amazon-books-dien-format-tiny is absent (research-only data, never in the repository)");
    return;
  }
  const CtrDataset ctr = load_ctr_dataset(std::string(FUNNEL_SOURCE_DIR) + "/datasets/amazon-books-dien-tiny.json", root, {});
  CHECK(ctr.instances.train.size() == 1);
  CHECK(ctr.instances.test.size() == 38);
  CHECK(std::count(ctr.instances.test.label.begin(), ctr.instances.test.label.end(), 1.0f) == 19);
  CHECK(ctr.instances.validation.size() == 0);
}
