// The catalogue's precision chosen at export (f32, f16, int8 with exact re-scoring rows), and catalogue
// updates without retraining: items added through the file's own item tower, replaced, removed, saved
// back to a .funnel file, with the ranking stage's item table kept in step.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <set>

#include "train/export/export.hpp"
#include "funnel/model.hpp"
#include "train/ranking/ranker_model.hpp"
#include "support.hpp"
#include "train/retrieval/two_tower.hpp"

using namespace funnel::train;
using funnel::CatalogueUpdate;
using funnel::Precision;
using funnel::StatusCode;

namespace {

struct Models {
  std::unique_ptr<funnel::Model> f32, f16, i8, both;
};

// Untrained towers (their weights are random, so the catalogue rows are distinct) exported three ways, and
// a file with both stages for the item table.
const Models& models() {
  static const Models loaded = [] {
    const Dataset& data = funnel::test::small_dataset();
    TrainConfig config;
    config.seed = 6;
    const TwoTowerModel towers(data, config);
    const auto load = [](const std::vector<uint8_t>& bytes, std::unique_ptr<funnel::Model>* out) {
      REQUIRE(funnel::Model::load_bytes(bytes.data(), bytes.size(), out).is_ok());
    };
    Models m;
    load(export_two_tower(data, towers, config, {}), &m.f32);
    config.catalogue_precision = "f16";
    load(export_two_tower(data, towers, config, {}), &m.f16);
    config.catalogue_precision = "int8";
    load(export_two_tower(data, towers, config, {}), &m.i8);
    config.catalogue_precision = "f32";
    RankerConfig ranker_config;
    ranker_config.max_history = 5;
    ranker_config.embedding_dim = 4;
    ranker_config.hidden = {6, 3};
    RankerModel ranker(data, ranker_config);
    Rng rng(5);
    ranker.init(rng);
    const RetrievalPart retrieval{towers, config};
    load(export_funnel(data, &retrieval, &ranker, {}), &m.both);
    return m;
  }();
  return loaded;
}

std::vector<std::string> tensor_dtypes(const funnel::Model& model, std::string_view prefix) {
  std::vector<std::string> out;
  for (size_t t = 0; t < model.tensor_count(); ++t) {
    const funnel::TensorInfo info = model.tensor_info(t);
    if (info.name.substr(0, prefix.size()) == prefix) out.push_back(std::string(info.name) + ":" + info.dtype);
  }
  return out;
}

std::vector<float> row_of(const funnel::Model& model, size_t index) {
  std::vector<float> row(model.embedding_dim());
  model.catalogue_row(index, row.data());
  return row;
}

}  // namespace

TEST_CASE("Catalogue precision: f16 and int8 files hold what they say and retrieve like f32", "[catalogue]") {
  const Models& m = models();
  CHECK(m.f32->catalogue_precision() == Precision::kF32);
  CHECK(m.f16->catalogue_precision() == Precision::kF16);
  CHECK(m.i8->catalogue_precision() == Precision::kI8);
  CHECK(tensor_dtypes(*m.f32, "catalogue/") == std::vector<std::string>{"catalogue/embeddings:f32"});
  CHECK(tensor_dtypes(*m.f16, "catalogue/") == std::vector<std::string>{"catalogue/embeddings:f16"});
  CHECK(tensor_dtypes(*m.i8, "catalogue/") ==
        std::vector<std::string>{"catalogue/embeddings:i8", "catalogue/scales:f32", "catalogue/exact_embeddings:f32"});
  // f16 halves the catalogue's bytes; an int8 file ships its exact rows beside the codes.
  const size_t rows = m.f32->catalogue_size(), dim = m.f32->embedding_dim();
  CHECK(m.f32->byte_size() - m.f16->byte_size() >= rows * dim * 2 - 64);
  CHECK(m.f16->catalogue_embeddings() == nullptr);
  REQUIRE(m.i8->catalogue_embeddings() != nullptr);
  for (size_t r = 0; r < rows; ++r) {
    const std::vector<float> exact = row_of(*m.f32, r), half = row_of(*m.f16, r), from_int8 = row_of(*m.i8, r);
    for (size_t i = 0; i < dim; ++i) {
      REQUIRE(std::fabs(half[i] - exact[i]) <= std::max(std::fabs(exact[i]) * std::ldexp(1.0, -11), std::ldexp(1.0, -25)));
      REQUIRE(from_int8[i] == exact[i]);  // the exact rows
    }
  }
  // Retrieval: int8 re-scores its shortlist exactly, so its top-10 is f32's, scores and all; f16's scores
  // are within the half precision of the rows.
  const Dataset& data = funnel::test::small_dataset();
  funnel::RetrieveOptions options;
  options.k = 10;
  size_t same_f16 = 0;
  for (size_t u = 0; u < 20; ++u) {
    std::vector<funnel::Recommendation> exact, half, quantised;
    REQUIRE(m.f32->retrieve(data.users.raw[u], options, &exact).is_ok());
    REQUIRE(m.f16->retrieve(data.users.raw[u], options, &half).is_ok());
    REQUIRE(m.i8->retrieve(data.users.raw[u], options, &quantised).is_ok());
    REQUIRE(quantised.size() == exact.size());
    for (size_t i = 0; i < exact.size(); ++i) {
      CHECK(quantised[i].key == exact[i].key);
      CHECK(quantised[i].score == exact[i].score);
      CHECK(half[i].score == Approx(exact[i].score).margin(2e-3));
    }
    std::set<std::string_view> truth;
    for (const auto& r : exact) truth.insert(r.key);
    for (const auto& r : half) same_f16 += truth.count(r.key);
  }
  CHECK(same_f16 >= 190);  // of 200
}

TEST_CASE("Catalogue precision: a bad value is a config error naming the field", "[catalogue]") {
  CHECK_THROWS_WITH(config_from_json(nlohmann::json{{"catalogue_precision", "bf16"}}, "run.json"),
                    Catch::Contains("run.json") && Catch::Contains("catalogue_precision"));
}

TEST_CASE("Catalogue updates: add, replace and remove items, and the ranking item table follows", "[catalogue]") {
  const Dataset& data = funnel::test::small_dataset();
  const funnel::Model& before = *models().both;
  const size_t rows = before.catalogue_size(), dim = before.embedding_dim();
  REQUIRE(before.item_table_size() == rows);
  const std::string replaced = data.items.keys[3], removed = data.items.keys[5];
  CatalogueUpdate update;
  update.upsert.push_back({"brand-new", data.items.raw[7]});  // a new key with item 7's features
  update.upsert.push_back({replaced, data.items.raw[9]});     // item 3 now described as item 9
  update.remove.push_back(removed);
  std::unique_ptr<funnel::Model> after;
  REQUIRE(before.update_catalogue(update, &after).is_ok());

  REQUIRE(after->catalogue_size() == rows);  // one added, one removed
  CHECK(after->find_item(removed) < 0);
  CHECK(after->find_ranking_item(removed) < 0);
  // Kept rows keep their order and their embeddings; the new key comes last.
  CHECK(after->item_key(0) == before.item_key(0));
  CHECK(after->item_key(4) == before.item_key(4));
  CHECK(after->item_key(5) == before.item_key(6));
  CHECK(after->item_key(rows - 1) == "brand-new");
  CHECK(row_of(*after, 0) == row_of(before, 0));
  CHECK(row_of(*after, 5) == row_of(before, 6));
  // A cold-start item is embedded by the item tower: the same features give the same row.
  const auto close = [&](const std::vector<float>& a, const std::vector<float>& b) {
    for (size_t i = 0; i < dim; ++i)
      if (std::fabs(a[i] - b[i]) > 1e-6f) return false;
    return true;
  };
  CHECK(close(row_of(*after, static_cast<size_t>(after->find_item("brand-new"))), row_of(before, 7)));
  CHECK(close(row_of(*after, static_cast<size_t>(after->find_item(replaced))), row_of(before, 9)));
  // The ranking stage scores the new and the replaced items as the items whose features they took.
  std::vector<float> p_after, p_before;
  const std::vector<std::string> behaviours = {data.items.keys[1], data.items.keys[2]};
  REQUIRE(after->rank(data.users.raw[0], behaviours, std::vector<std::string>{"brand-new", replaced}, &p_after).is_ok());
  REQUIRE(before.rank(data.users.raw[0], behaviours, std::vector<std::string>{data.items.keys[7], data.items.keys[9]}, &p_before).is_ok());
  CHECK(p_after[0] == Approx(p_before[0]).epsilon(1e-6));
  CHECK(p_after[1] == Approx(p_before[1]).epsilon(1e-6));
  // Retrieval never returns the removed item, and the whole cascade runs on the new model.
  funnel::RetrieveOptions options;
  options.k = rows;
  std::vector<funnel::Recommendation> all;
  REQUIRE(after->retrieve(data.users.raw[0], options, &all).is_ok());
  CHECK(all.size() == rows);
  for (const auto& r : all) CHECK(r.key != removed);
  funnel::CascadeResult result;
  REQUIRE(after->recommend(data.users.raw[0], funnel::CascadeOptions{}, &result).is_ok());
  // The file records what was done to it; the model it came from is unchanged.
  bool noted = false;
  for (const auto& [key, value] : after->metadata()) noted = noted || (key == "catalogue_updates" && value.rfind("+2 -1", 0) == 0);
  CHECK(noted);
  CHECK(before.catalogue_size() == rows);
  CHECK(before.find_item(removed) >= 0);
}

TEST_CASE("Catalogue updates: quantised catalogues stay quantised, and a saved file loads back", "[catalogue]") {
  const Dataset& data = funnel::test::small_dataset();
  funnel::test::TempDir dir;
  for (const funnel::Model* model : {models().f16.get(), models().i8.get()}) {
    CatalogueUpdate update;
    update.upsert.push_back({"cold", data.items.raw[11]});
    std::unique_ptr<funnel::Model> after;
    REQUIRE(model->update_catalogue(update, &after).is_ok());
    CHECK(after->catalogue_precision() == model->catalogue_precision());
    CHECK(tensor_dtypes(*after, "catalogue/") == tensor_dtypes(*model, "catalogue/"));
    const std::vector<float> cold = row_of(*after, after->catalogue_size() - 1), same = row_of(*model, 11);
    for (size_t i = 0; i < cold.size(); ++i) CHECK(cold[i] == Approx(same[i]).margin(1e-6));
    const std::string path = dir.file("updated.funnel");
    REQUIRE(after->save(path).is_ok());
    std::unique_ptr<funnel::Model> reloaded;
    REQUIRE(funnel::Model::load_file(path, &reloaded).is_ok());
    REQUIRE(reloaded->byte_size() == after->byte_size());
    CHECK(std::equal(reloaded->bytes().begin(), reloaded->bytes().end(), after->bytes().begin()));
    CHECK(reloaded->find_item("cold") == static_cast<int64_t>(reloaded->catalogue_size() - 1));
  }
}

TEST_CASE("Catalogue updates: bad updates are errors that name the item, and change nothing", "[catalogue]") {
  const Dataset& data = funnel::test::small_dataset();
  const funnel::Model& model = *models().both;
  const auto fails = [&](const CatalogueUpdate& update, const std::string& message) {
    std::unique_ptr<funnel::Model> after;
    const funnel::Status status = model.update_catalogue(update, &after);
    INFO(status.message());
    CHECK(status.code() == StatusCode::kInvalidArgument);
    CHECK(status.message().find(message) != std::string::npos);
    CHECK(after == nullptr);
  };
  CatalogueUpdate twice;
  twice.upsert = {{"x", data.items.raw[0]}, {"x", data.items.raw[1]}};
  fails(twice, "item 'x' is added twice");
  CatalogueUpdate both;
  both.upsert = {{data.items.keys[0], data.items.raw[0]}};
  both.remove = {data.items.keys[0]};
  fails(both, "is both added and removed");
  CatalogueUpdate unknown;
  unknown.remove = {"no-such-item"};
  fails(unknown, "cannot remove item 'no-such-item'");
  CatalogueUpdate missing;
  funnel::Features partial = data.items.raw[0];
  funnel::Features without_category;
  for (const auto& [name, value] : partial.entries())
    if (name != "category") without_category.set(name, value);
  missing.upsert = {{"new", without_category}};
  fails(missing, "item 'new': missing feature 'category'");
  CHECK(model.find_item("new") < 0);
  const std::string directory = "/nonexistent-funnel-dir/model.funnel";
  const funnel::Status saved = model.save(directory);
  CHECK(saved.code() == StatusCode::kIoError);
  CHECK(saved.message().find("/nonexistent-funnel-dir/model.funnel") != std::string::npos);
}
