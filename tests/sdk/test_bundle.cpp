// Joining stage files (Model::bundle, `funnel bundle`): a bundle of golden stage files answers exactly as its
// parts do, stage by stage, and files that disagree on a feature, an item or a stage are refused with a
// message that names it. Parts that the golden files do not hold as such (one stage of three-stages.funnel,
// a changed feature) are golden files changed through the FlatBuffers object API.
// SDK only: no trainer.
#include <algorithm>
#include <bit>
#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "funnel/encoding.hpp"
#include "funnel/funnel.hpp"
#include "funnel_generated.h"

using funnel::BundlePart;
using funnel::Model;
using funnel::StatusCode;
using Catch::Matchers::Contains;

namespace {

namespace fb = funnel::fb;

const std::string kGolden = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/golden/";

std::unique_ptr<Model> golden(const std::string& name) {
  std::unique_ptr<Model> model;
  REQUIRE(Model::load_file(kGolden + name, &model).is_ok());
  return model;
}

// `source` unpacked, changed by `edit`, packed and loaded again.
std::unique_ptr<Model> changed(const Model& source, const std::function<void(fb::ModelT&)>& edit) {
  std::unique_ptr<fb::ModelT> unpacked(fb::GetModel(source.bytes().data())->UnPack());
  edit(*unpacked);
  flatbuffers::FlatBufferBuilder builder;
  fb::FinishModelBuffer(builder, fb::Model::Pack(builder, unpacked.get()));
  std::unique_ptr<Model> model;
  const funnel::Status status = Model::load_bytes(builder.GetBufferPointer(), builder.GetSize(), &model);
  INFO(status.to_string());
  REQUIRE(status.is_ok());
  return model;
}

// One stage of three-stages.funnel as a file of its own (its item table only where the stage reads one).
std::unique_ptr<Model> only_stage(const Model& source, const std::string& stage) {
  return changed(source, [&stage](fb::ModelT& m) {
    if (stage != "retrieval") m.retrieval.reset();
    if (stage != "pre_ranking") m.pre_ranking.reset();
    if (stage != "ranking") m.ranking.reset();
    if (stage == "retrieval") m.items.reset();
  });
}

// `strings` as a StringTable's contents, with their sorted order.
void set_strings(fb::StringTableT* table, const std::vector<std::string>& strings) {
  funnel::PackedStrings packed = funnel::pack_strings(strings);
  table->bytes = std::move(packed.bytes);
  table->ends = std::move(packed.ends);
  table->order = std::move(packed.order);
}

// Model::bundle: with `status`, whatever it answered; without, a bundle that must succeed, and verify.
std::unique_ptr<Model> bundle(const std::vector<BundlePart>& parts, funnel::Status* status = nullptr) {
  std::unique_ptr<Model> out;
  const funnel::Status result = Model::bundle(parts, &out);
  if (status) {
    *status = result;
  } else {
    INFO(result.to_string());
    REQUIRE(result.is_ok());
    REQUIRE(out->verify().is_ok());
  }
  return out;
}

std::string refusal(const std::vector<BundlePart>& parts) {
  funnel::Status status;
  const auto out = bundle(parts, &status);
  CHECK(status.code() == StatusCode::kInvalidArgument);
  CHECK(out == nullptr);
  return status.message();
}

// The requests of tests/data/golden/expected.json: known users, and a user the model has never seen.
std::vector<funnel::Features> users() {
  std::vector<funnel::Features> users(3);
  users[0].set("user_id", "u3").set("age", 41.0).set("region", "r2").set("device", "ios");
  users[1].set("user_id", "u17").set("age", "23").set("region", "r0").set("device", "android");
  users[2].set("user_id", "someone new").set("age", 70.0).set("region", "r99").set("device", "web");
  return users;
}
const std::vector<std::string> kBehaviours = {"i3", "i8", "i21", "i8", "unseen"};
const std::vector<std::string> kCandidates = {"i5", "i9", "i0", "i39"};

// The cascade of expected.json: -k 5 --retrieve-k 20 --prerank-k 10 (pre-ranking where the file has it).
funnel::CascadeOptions cascade_options() {
  funnel::CascadeOptions options;
  options.k = 5;
  options.retrieve_k = 20;
  options.prerank_k = 10;
  options.behaviours = {"i3", "i8", "i21"};
  options.exclude = {"i1", "i2"};
  return options;
}

funnel::CatalogueUpdate removing(const std::string& key) {
  funnel::CatalogueUpdate update;
  update.remove = {key};
  return update;
}

uint32_t bits(float x) { return std::bit_cast<uint32_t>(x); }

void same_retrieval(const Model& bundled, const Model& part) {
  REQUIRE(bundled.has_retrieval());
  CHECK(bundled.catalogue_size() == part.catalogue_size());
  CHECK(bundled.catalogue_precision() == part.catalogue_precision());
  for (const funnel::Features& user : users()) {
    std::vector<funnel::Recommendation> expected, got;
    REQUIRE(part.retrieve(user, {.k = 10, .exclude = {"i1", "i2"}}, &expected).is_ok());
    REQUIRE(bundled.retrieve(user, {.k = 10, .exclude = {"i1", "i2"}}, &got).is_ok());
    REQUIRE(got.size() == expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].key == expected[i].key);
      CHECK(got[i].index == expected[i].index);
      CHECK(bits(got[i].score) == bits(expected[i].score));
    }
  }
}

// rank() (or prerank()) of the bundle and of the part, for the requests of expected.json.
void same_ranking(const Model& bundled, const Model& part, bool pre_ranking) {
  REQUIRE((pre_ranking ? bundled.has_pre_ranking() : bundled.has_ranking()));
  for (const funnel::Features& user : users()) {
    std::vector<float> expected, got;
    if (pre_ranking) {
      REQUIRE(part.prerank(user, kBehaviours, kCandidates, &expected).is_ok());
      REQUIRE(bundled.prerank(user, kBehaviours, kCandidates, &got).is_ok());
    } else {
      REQUIRE(part.rank(user, kBehaviours, kCandidates, &expected).is_ok());
      REQUIRE(bundled.rank(user, kBehaviours, kCandidates, &got).is_ok());
    }
    REQUIRE(got.size() == expected.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(bits(got[i]) == bits(expected[i]));
  }
}

std::string metadata(const Model& model, const std::string& key) {
  for (const auto& [k, v] : model.metadata())
    if (k == key) return v;
  FAIL("no metadata entry " << key);
  return {};
}

bool has_metadata(const Model& model, const std::string& key) {
  for (const auto& entry : model.metadata())
    if (entry.first == key) return true;
  return false;
}

}  // namespace

TEST_CASE("Bundle: retrieval.funnel + ranking-can.funnel answers as each part, stage by stage", "[bundle]") {
  const auto ranking = golden("ranking-can.funnel");
  for (const std::string name : {"retrieval.funnel", "retrieval-int8.funnel"}) {
    INFO(name);
    const auto retrieval = golden(name);
    const auto bundled = bundle({{name, retrieval.get()}, {"ranking-can.funnel", ranking.get()}});
    CHECK(bundled->has_retrieval());
    CHECK(bundled->has_ranking());
    CHECK_FALSE(bundled->has_pre_ranking());
    CHECK(bundled->tensor_count() == retrieval->tensor_count() + ranking->tensor_count());
    same_retrieval(*bundled, *retrieval);
    same_ranking(*bundled, *ranking, /*pre_ranking=*/false);

    // The cascade: retrieval's best 20, ranked; each result scored as the parts score it.
    for (const funnel::Features& user : users()) {
      funnel::CascadeResult result;
      REQUIRE(bundled->recommend(user, cascade_options(), &result).is_ok());
      REQUIRE(result.items.size() == 5);
      REQUIRE(result.stages.size() == 2);
      CHECK(result.stages[0].stage == "retrieval");
      CHECK(result.stages[1].stage == "ranking");
      std::vector<funnel::Recommendation> retrieved;
      REQUIRE(retrieval->retrieve(user, {.k = 20, .exclude = {"i1", "i2"}}, &retrieved).is_ok());
      std::vector<std::string> keys;
      for (const auto& r : retrieved) keys.emplace_back(r.key);
      std::vector<float> probabilities;
      REQUIRE(ranking->rank(user, std::vector<std::string>{"i3", "i8", "i21"}, keys, &probabilities).is_ok());
      for (const funnel::CascadeItem& item : result.items) {
        const auto at = std::find(keys.begin(), keys.end(), item.key);
        REQUIRE(at != keys.end());
        const size_t i = static_cast<size_t>(at - keys.begin());
        CHECK(bits(item.retrieval_score) == bits(retrieved[i].score));
        CHECK(bits(item.score) == bits(probabilities[i]));
      }
    }

    // Metadata: each part's entries, "dataset" (the same in both) once, and the lineage.
    CHECK_THAT(metadata(*bundled, "config"), Contains("\"catalogue_precision\""));
    CHECK_THAT(metadata(*bundled, "ranking_config"), Contains("\"coaction\""));
    CHECK(metadata(*bundled, "dataset") == "synthetic");
    CHECK_FALSE(has_metadata(*bundled, "ranking/dataset"));
    const auto lineage = nlohmann::json::parse(metadata(*bundled, "lineage"));
    REQUIRE(lineage.size() == 2);
    CHECK(lineage[0]["file"] == name);
    CHECK(lineage[0]["stages"] == nlohmann::json::array({"retrieval"}));
    CHECK(lineage[0]["producer"] == std::string(retrieval->producer()));
    CHECK(lineage[1]["file"] == "ranking-can.funnel");
    CHECK(lineage[1]["stages"] == nlohmann::json::array({"ranking"}));
  }
}

TEST_CASE("Bundle: three-stages.funnel split into three files and joined again is the same funnel", "[bundle]") {
  const auto whole = golden("three-stages.funnel");
  const auto retrieval = only_stage(*whole, "retrieval");
  const auto ranking = only_stage(*whole, "ranking");
  const auto pre_ranking = only_stage(*whole, "pre_ranking");
  // The pre-ranking file's item table with its rows reversed, its columns reversed and a column the ranking
  // file's lacks (device, which no stage reads): the join aligns rows by key and columns by feature.
  const uint32_t device = static_cast<uint32_t>(whole->feature_index("device"));
  const auto reordered = changed(*pre_ranking, [&](fb::ModelT& m) {
    fb::ItemTableT& items = *m.items;
    const size_t rows = pre_ranking->item_table_size(), width = items.features.size();
    std::vector<std::string> keys;
    std::vector<uint32_t> ids;
    for (size_t r = rows; r-- > 0;) {
      keys.emplace_back(pre_ranking->ranking_item_key(r));
      for (size_t c = width; c-- > 0;) ids.push_back(items.ids[r * width + c]);
      ids.push_back(1);
    }
    std::reverse(items.features.begin(), items.features.end());
    items.features.push_back(device);
    items.ids = std::move(ids);
    set_strings(items.item_keys.get(), keys);
  });
  const std::vector<BundlePart> parts = {
      {"retrieval.funnel", retrieval.get()}, {"pre-ranking.funnel", reordered.get()}, {"ranking.funnel", ranking.get()}};

  SECTION("every stage and the cascade answer as the original file") {
    const auto bundled = bundle(parts);
    same_retrieval(*bundled, *whole);
    same_ranking(*bundled, *whole, /*pre_ranking=*/true);
    same_ranking(*bundled, *whole, /*pre_ranking=*/false);
    // The item table: the ranking file's rows and columns, then the column only the pre-ranking file has.
    REQUIRE(bundled->ranker().item_columns == 3);
    CHECK(bundled->item_column_feature(2) == device);
    for (size_t r = 0; r < bundled->item_table_size(); ++r) CHECK(bundled->ranking_item_key(r) == whole->ranking_item_key(r));
    for (const funnel::Features& user : users()) {
      const funnel::CascadeOptions options = cascade_options();
      funnel::CascadeResult expected, got;
      REQUIRE(whole->recommend(user, options, &expected).is_ok());
      REQUIRE(bundled->recommend(user, options, &got).is_ok());
      REQUIRE(got.items.size() == expected.items.size());
      REQUIRE(got.stages.size() == 3);
      for (size_t i = 0; i < got.items.size(); ++i) {
        CHECK(got.items[i].key == expected.items[i].key);
        CHECK(bits(got.items[i].score) == bits(expected.items[i].score));
        CHECK(bits(got.items[i].retrieval_score) == bits(expected.items[i].retrieval_score));
      }
    }
    const auto lineage = nlohmann::json::parse(metadata(*bundled, "lineage"));
    REQUIRE(lineage.size() == 3);
    for (size_t p = 0; p < 3; ++p) CHECK(lineage[p]["file"] == parts[p].name);
    CHECK(lineage[1]["stages"] == nlohmann::json::array({"pre_ranking"}));
    // The pre-ranking file's AutoFAS record stays where `funnel inspect` reads it.
    CHECK(metadata(*bundled, "pre_ranking") == metadata(*whole, "pre_ranking"));

    // A bundle bundled again: the new lineage, the old one kept under the first stage's name.
    const auto again = bundle({{"funnel.funnel", bundled.get()}});
    CHECK(nlohmann::json::parse(metadata(*again, "lineage"))[0]["stages"] ==
          nlohmann::json::array({"retrieval", "pre_ranking", "ranking"}));
    CHECK(metadata(*again, "retrieval/lineage") == metadata(*bundled, "lineage"));
  }
  SECTION("an item one of the two item tables lacks is refused, naming it") {
    std::unique_ptr<Model> fewer;
    REQUIRE(reordered->update_catalogue(removing("i7"), &fewer).is_ok());
    const std::string message = refusal({parts[0], {"pre-ranking.funnel", fewer.get()}, parts[2]});
    CHECK_THAT(message, Contains("item 'i7' is in the item table of 'ranking.funnel' but not in that of 'pre-ranking.funnel'"));
  }
  SECTION("an item both tables hold with another id in a shared column is refused, naming the item and the feature") {
    const int64_t row = reordered->find_ranking_item("i5");
    REQUIRE(row >= 0);
    const uint32_t category = static_cast<uint32_t>(whole->feature_index("category"));
    const auto other_id = changed(*reordered, [&](fb::ModelT& m) {
      const size_t width = m.items->features.size();
      const size_t column = static_cast<size_t>(std::find(m.items->features.begin(), m.items->features.end(), category) - m.items->features.begin());
      uint32_t& id = m.items->ids[static_cast<size_t>(row) * width + column];
      id = id == 1 ? 2 : 1;
    });
    const std::string message = refusal({parts[0], {"pre-ranking.funnel", other_id.get()}, parts[2]});
    CHECK_THAT(message, Contains("item 'i5': feature 'category' has id"));
    CHECK_THAT(message, Contains("'ranking.funnel'"));
    CHECK_THAT(message, Contains("'pre-ranking.funnel'"));
  }
}

TEST_CASE("Bundle: stage files that disagree are refused with a message naming what and where", "[bundle]") {
  const auto retrieval = golden("retrieval.funnel");
  const auto ranking = golden("ranking-can.funnel");
  const auto three = golden("three-stages.funnel");
  // Why retrieval.funnel and `part` cannot be bundled.
  const auto refused = [&retrieval](const std::string& name, const std::unique_ptr<Model>& part) {
    return refusal({{"retrieval.funnel", retrieval.get()}, {name, part.get()}});
  };

  SECTION("the same stage from two files") {
    CHECK_THAT(refusal({{"a/three-stages.funnel", three.get()}, {"b/three-stages.funnel", three.get()}}),
               Contains("the retrieval stage is in both 'a/three-stages.funnel' and 'b/three-stages.funnel'"));
    CHECK_THAT(refusal({{"three-stages.funnel", three.get()}, {"ranking-can.funnel", ranking.get()}}),
               Contains("the ranking stage is in both 'three-stages.funnel' and 'ranking-can.funnel'"));
  }
  SECTION("no stage") {
    CHECK_THAT(refusal({}), Contains("nothing to bundle"));
    CHECK_THAT(refusal({{"missing.funnel", nullptr}}), Contains("'missing.funnel' is not a loaded model"));
  }
  SECTION("a part that adds no stage") {
    const auto empty = changed(*retrieval, [](fb::ModelT& m) { m.retrieval.reset(); });
    CHECK_THAT(refused("empty.funnel", empty), Contains("'empty.funnel' holds no stage"));
  }
  SECTION("a feature that differs in any way; a catalogue item the item table lacks; a tensor name both files use") {
    using Edit = std::function<void(fb::ModelT&)>;
    const size_t category = static_cast<size_t>(retrieval->feature_index("category"));
    const size_t price = static_cast<size_t>(retrieval->feature_index("price"));
    const std::vector<std::pair<Edit, std::string>> cases = {
        {[category](fb::ModelT& m) {
           fb::StringTableT& vocabulary = *m.features[category]->values;
           std::vector<std::string> values;
           for (size_t i = 0; i < vocabulary.ends.size(); ++i) values.push_back(std::to_string(i) + "th");
           set_strings(&vocabulary, values);
         },
         "feature 'category' has another vocabulary in 'changed.funnel' than in 'retrieval.funnel'"},
        {[](fb::ModelT& m) { m.features[3]->name = "platform"; },
         "feature 3 is 'device' in 'retrieval.funnel' but 'platform' in 'changed.funnel'"},
        {[](fb::ModelT& m) {
           m.features.push_back(std::make_unique<fb::FeatureSpecT>());
           m.features.back()->name = "extra";
           m.features.back()->kind = fb::FeatureKind::Dense;
         },
         "feature 'extra' of 'changed.funnel' is not a feature of 'retrieval.funnel'"},
        {[price](fb::ModelT& m) { m.features[price]->mean += 1; },
         "feature 'price' has another mean in 'changed.funnel' than in 'retrieval.funnel'"},
        {[](fb::ModelT& m) { m.tensors[0]->name = "user/embedding/age"; },
         "tensor 'user/embedding/age' is in both 'retrieval.funnel' and 'changed.funnel'"}};
    for (const auto& [edit, message] : cases) CHECK_THAT(refused("changed.funnel", changed(*ranking, edit)), Contains(message));
    std::unique_ptr<Model> fewer;
    REQUIRE(ranking->update_catalogue(removing("i7"), &fewer).is_ok());
    CHECK_THAT(refused("fewer.funnel", fewer),
               Contains("catalogue item 'i7' of 'retrieval.funnel' is not in the item table of 'fewer.funnel'"));
  }
  SECTION("metadata that disagrees is kept, the later value under the stage's name") {
    const auto other = changed(*ranking, [](fb::ModelT& m) {
      for (auto& entry : m.metadata)
        if (entry->key == "dataset") entry->value = "another";
    });
    const auto bundled = bundle({{"retrieval.funnel", retrieval.get()}, {"other.funnel", other.get()}});
    CHECK(metadata(*bundled, "dataset") == "synthetic");
    CHECK(metadata(*bundled, "ranking/dataset") == "another");
  }
}
