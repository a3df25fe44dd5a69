// Old files keep loading and keep their meaning: the golden model files in tests/data/golden, made by
// scripts/make_golden.sh, must give the answers recorded in expected.json. Hostile files never crash:
// every input the fuzzer ever crashed on (tests/data/fuzz-regressions) and the hand-built files below
// that declare sizes the loader must refuse before anything is allocated from them.
// SDK only: no trainer, so this runs in the ThreadSanitizer build too.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "funnel/encoding.hpp"
#include "funnel/funnel.hpp"
#include "funnel_generated.h"

using funnel::Model;
using funnel::StatusCode;
using Catch::Matchers::Contains;

namespace {

const std::string kGolden = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/golden";
const std::string kRegressions = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/fuzz-regressions/fuzz_model_load";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::string> files_in(const std::string& folder, const std::string& extension) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(folder))
    if (entry.is_regular_file() && entry.path().extension() == extension) out.push_back(entry.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// A JSON object of raw features as the CLI's --user reads it: strings, numbers, lists of strings.
funnel::Features features_of(const nlohmann::json& object) {
  funnel::Features features;
  for (const auto& [name, value] : object.items()) {
    if (value.is_number()) {
      features.set(name, value.get<double>());
    } else if (value.is_array()) {
      features.set(name, value.get<std::vector<std::string>>());
    } else {
      features.set(name, value.get<std::string>());
    }
  }
  return features;
}

// What an application does with a file that loaded; nothing here may crash, whatever the file held.
void use_loaded(const Model& model) {
  for (size_t f = 0; f < model.feature_count(); ++f) (void)model.feature_index(model.feature_info(f).name);
  funnel::Features user;
  for (size_t f = 0; f < model.feature_count(); ++f) {
    const funnel::FeatureInfo info = model.feature_info(f);
    if (info.kind == "dense") {
      user.set(info.name, 1.0);
    } else if (info.kind == "multi_categorical") {
      user.set(info.name, std::vector<std::string>{"a", "b"});
    } else {
      user.set(info.name, "u1");
    }
  }
  if (model.has_retrieval()) {
    std::vector<funnel::Recommendation> top;
    (void)model.retrieve(user, {.k = 10, .exclude = {"i1"}}, &top);
  }
  if (model.has_ranking()) {
    std::vector<float> p;
    (void)model.rank(user, std::vector<std::string>{"i3", "unseen"}, std::vector<std::string>{"i0", "i1", "i2"}, &p);
  }
  if (model.has_pre_ranking()) {
    std::vector<float> p;
    (void)model.prerank(user, std::vector<std::string>{"i3", "unseen"}, std::vector<std::string>{"i0", "i1", "i2"}, &p);
  }
}

}  // namespace

TEST_CASE("Golden files: every file loads, mapped and copied, and lists its tensors", "[golden]") {
  const std::vector<std::string> files = files_in(kGolden, ".funnel");
  REQUIRE(files.size() >= 3);
  for (const std::string& path : files) {
    INFO(path);
    std::unique_ptr<Model> mapped, copied;
    const funnel::Status status = Model::load_file(path, &mapped);
    INFO(status.to_string());
    REQUIRE(status.is_ok());
    CHECK((mapped->has_retrieval() || mapped->has_ranking()));
    // Every format version from the oldest this SDK reads on has golden files (docs/model-file.md).
    CHECK(mapped->format_version() >= funnel::kOldestFormatVersion);
    CHECK(mapped->format_version() <= funnel::kFormatVersion);
    CHECK(mapped->has_checksums() == (mapped->format_version() >= 3));
    // The trainer writes stage files; a funnel trained by one command is its stage files joined by the SDK.
    CHECK((mapped->producer() == "funnel-train 0.1.0" || mapped->producer() == "funnel-sdk 0.1.0 bundle"));
    const auto bytes = read_bytes(path);
    REQUIRE(Model::load_bytes(bytes.data(), bytes.size(), &copied).is_ok());
    // What inspection lists: every tensor with a shape whose product times the element size is its size.
    size_t tensor_bytes = 0;
    for (size_t t = 0; t < mapped->tensor_count(); ++t) {
      const funnel::TensorInfo tensor = mapped->tensor_info(t);
      INFO(tensor.name);
      uint64_t elements = 1;
      for (uint64_t extent : tensor.shape) elements *= extent;
      // Only a catalogue's rows may be f16 or i8 (retrieval-f16 and retrieval-int8).
      const std::string dtype = tensor.dtype;
      const bool compact_catalogue = tensor.name == "catalogue/embeddings" && (dtype == "f16" || dtype == "i8");
      CHECK((dtype == "f32" || compact_catalogue));
      CHECK(tensor.bytes == elements * (dtype == "f32" ? 4 : dtype == "f16" ? 2 : 1));
      tensor_bytes += tensor.bytes;
    }
    CHECK(mapped->tensor_count() > 0);
    CHECK(tensor_bytes < bytes.size());
  }
  {
    std::unique_ptr<Model> retrieval;
    REQUIRE(Model::load_file(kGolden + "/retrieval.funnel", &retrieval).is_ok());
    const funnel::TensorInfo catalogue = retrieval->tensor_info(retrieval->tensor_count() - 1);
    CHECK(catalogue.name == "catalogue/embeddings");
    CHECK(catalogue.shape == std::vector<uint64_t>{retrieval->catalogue_size(), retrieval->embedding_dim()});
  }
}

TEST_CASE("Golden files: every stage gives the answers recorded when the files were made", "[golden]") {
  std::ifstream in(kGolden + "/expected.json");
  REQUIRE(in.good());
  const nlohmann::json expected = nlohmann::json::parse(in);
  size_t checked = 0;
  // Scores may differ in the last bits between the AVX2 and the portable kernels; within this tolerance
  // two scores are a tie whose order is not part of the contract.
  const double tolerance = 2e-5;

  for (const auto& request : expected.at("retrieve")) {
    const std::string name = request.at("model").get<std::string>();
    INFO(name << " " << request.at("user").dump());
    std::unique_ptr<Model> model;
    REQUIRE(Model::load_file(kGolden + "/" + name, &model).is_ok());
    funnel::RetrieveOptions options;
    options.k = request.at("k").get<size_t>();
    options.exclude = request.at("exclude").get<std::vector<std::string>>();
    std::vector<funnel::Recommendation> top;
    const funnel::Status status = model->retrieve(features_of(request.at("user")), options, &top);
    INFO(status.to_string());
    REQUIRE(status.is_ok());
    const auto& answer = request.at("answer").at("recommendations");
    REQUIRE(top.size() == answer.size());
    for (size_t i = 0; i < top.size(); ++i) {
      const double score = answer[i].at("score").get<double>();
      CHECK(std::fabs(top[i].score - score) < tolerance);
      const bool tied = (i > 0 && std::fabs(answer[i - 1].at("score").get<double>() - score) < tolerance) ||
                        (i + 1 < top.size() && std::fabs(answer[i + 1].at("score").get<double>() - score) < tolerance);
      if (!tied) {
        CHECK(top[i].key == answer[i].at("key").get<std::string>());
        CHECK(top[i].index == answer[i].at("index").get<uint32_t>());
      }
    }
    ++checked;
  }

  for (const auto& request : expected.at("rank")) {
    const std::string name = request.at("model").get<std::string>();
    INFO(name << " " << request.at("user").dump());
    std::unique_ptr<Model> model;
    REQUIRE(Model::load_file(kGolden + "/" + name, &model).is_ok());
    const auto behaviours = request.at("behaviours").get<std::vector<std::string>>();
    const auto candidates = request.at("candidates").get<std::vector<std::string>>();
    std::vector<float> probabilities;
    const funnel::Status status = model->rank(features_of(request.at("user")), behaviours, candidates, &probabilities);
    INFO(status.to_string());
    REQUIRE(status.is_ok());
    REQUIRE(probabilities.size() == candidates.size());
    for (const auto& ranked : request.at("answer").at("ranked")) {
      const auto at = std::find(candidates.begin(), candidates.end(), ranked.at("key").get<std::string>());
      REQUIRE(at != candidates.end());
      CHECK(std::fabs(probabilities[static_cast<size_t>(at - candidates.begin())] - ranked.at("probability").get<double>()) < tolerance);
    }
    ++checked;
  }

  // The pre-ranking stage of the file with every stage, as rank() is checked above.
  for (const auto& request : expected.at("prerank")) {
    const std::string name = request.at("model").get<std::string>();
    INFO(name << " " << request.at("user").dump());
    std::unique_ptr<Model> model;
    REQUIRE(Model::load_file(kGolden + "/" + name, &model).is_ok());
    REQUIRE(model->has_pre_ranking());
    const auto behaviours = request.at("behaviours").get<std::vector<std::string>>();
    const auto candidates = request.at("candidates").get<std::vector<std::string>>();
    std::vector<float> probabilities;
    const funnel::Status status = model->prerank(features_of(request.at("user")), behaviours, candidates, &probabilities);
    INFO(status.to_string());
    REQUIRE(status.is_ok());
    REQUIRE(probabilities.size() == candidates.size());
    REQUIRE(request.at("answer").at("ranked").size() == candidates.size());
    for (const auto& ranked : request.at("answer").at("ranked")) {
      const auto at = std::find(candidates.begin(), candidates.end(), ranked.at("key").get<std::string>());
      REQUIRE(at != candidates.end());
      CHECK(std::fabs(probabilities[static_cast<size_t>(at - candidates.begin())] - ranked.at("probability").get<double>()) < tolerance);
    }
    ++checked;
  }

  // The whole cascade: retrieval, pre-ranking to prerank_k, ranking to k.
  for (const auto& request : expected.at("cascade")) {
    const std::string name = request.at("model").get<std::string>();
    INFO(name << " " << request.at("user").dump());
    std::unique_ptr<Model> model;
    REQUIRE(Model::load_file(kGolden + "/" + name, &model).is_ok());
    funnel::CascadeOptions options;
    options.k = request.at("k").get<size_t>();
    options.retrieve_k = request.at("retrieve_k").get<size_t>();
    options.prerank_k = request.at("prerank_k").get<size_t>();
    options.behaviours = request.at("behaviours").get<std::vector<std::string>>();
    options.exclude = request.at("exclude").get<std::vector<std::string>>();
    funnel::CascadeResult result;
    const funnel::Status status = model->recommend(features_of(request.at("user")), options, &result);
    INFO(status.to_string());
    REQUIRE(status.is_ok());
    REQUIRE(result.stages.size() == 3);
    CHECK(result.stages[1].stage == "pre_ranking");
    CHECK(result.stages[1].scored == options.retrieve_k);
    CHECK(result.stages[1].kept == options.prerank_k);
    const auto& answer = request.at("answer").at("recommendations");
    REQUIRE(result.items.size() == answer.size());
    for (size_t i = 0; i < answer.size(); ++i) {
      const double score = answer[i].at("score").get<double>();
      CHECK(std::fabs(result.items[i].score - score) < tolerance);
      const bool tied = (i > 0 && std::fabs(answer[i - 1].at("score").get<double>() - score) < tolerance) ||
                        (i + 1 < answer.size() && std::fabs(answer[i + 1].at("score").get<double>() - score) < tolerance);
      if (!tied) {
        CHECK(result.items[i].key == answer[i].at("key").get<std::string>());
        CHECK(std::fabs(result.items[i].retrieval_score - answer[i].at("retrieval_score").get<double>()) < tolerance);
      }
    }
    ++checked;
  }
  CHECK(checked >= 15);
}

TEST_CASE("Fuzz regressions: every input the fuzzer crashed on is refused cleanly, never a crash", "[hostile]") {
  // What each file must give now: the start of the error, or "" for a file that loads (and is then used).
  const std::vector<std::pair<std::string, std::string>> known = {
      {"misaligned-tensor-shape.funnel", "shape is misaligned"},
  };
  const std::vector<std::string> files = files_in(kRegressions, ".funnel");
  CHECK(files.size() >= known.size());
  for (const std::string& path : files) {
    INFO(path);
    const auto bytes = read_bytes(path);
    std::unique_ptr<Model> model;
    const funnel::Status status = Model::load_bytes(bytes.data(), bytes.size(), &model);
    INFO(status.to_string());
    if (!status) {
      CHECK(model == nullptr);
      CHECK((status.code() == StatusCode::kCorruptModel || status.code() == StatusCode::kUnsupported));
      CHECK(!status.message().empty());
    } else {
      use_loaded(*model);
    }
    const std::string file = std::filesystem::path(path).filename().string();
    for (const auto& [name, error] : known)
      if (name == file) {
        if (error.empty()) {
          CHECK(status.is_ok());
        } else {
          CHECK_THAT(status.message(), Contains(error));
        }
      }
  }
}

namespace {

namespace fb = funnel::fb;

flatbuffers::Offset<fb::Tensor> f32_tensor(flatbuffers::FlatBufferBuilder& b, const std::string& name, std::vector<uint64_t> shape) {
  uint64_t count = 1;
  for (uint64_t extent : shape) count *= extent;
  const std::vector<uint8_t> data(count * sizeof(float), 0);
  return fb::CreateTensor(b, b.CreateString(name), b.CreateVector(shape), fb::DType::F32, b.CreateVector(data));
}

flatbuffers::Offset<fb::StringTable> strings(flatbuffers::FlatBufferBuilder& b, const std::vector<std::string>& keys) {
  const funnel::PackedStrings packed = funnel::pack_strings(keys);
  return fb::CreateStringTable(b, b.CreateVector(packed.bytes), b.CreateVector(packed.ends), b.CreateVector(packed.order));
}

std::vector<uint8_t> finish(flatbuffers::FlatBufferBuilder& b, flatbuffers::Offset<fb::Model> root) {
  fb::FinishModelBuffer(b, root);
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

// One categorical feature (one id) whose [1, 65536] table feeds `inputs` inputs of both towers, which
// have no dense layers; an empty catalogue whose width is what a uint32 sum of the inputs gives.
std::vector<uint8_t> wide_towers(uint32_t inputs) {
  flatbuffers::FlatBufferBuilder b;
  const auto feature = fb::CreateFeatureSpec(b, b.CreateString("f"), fb::FeatureKind::Categorical, 1);
  const uint32_t wrapped = static_cast<uint32_t>(uint64_t{inputs} * 65536);
  const std::vector<flatbuffers::Offset<fb::Tensor>> tensors = {f32_tensor(b, "table", {1, 65536}), f32_tensor(b, "catalogue", {0, wrapped})};
  const auto input = fb::CreateTowerInput(b, 0, 0);
  // One table, referred to `inputs` times: the file stays small while the row it describes does not.
  const std::vector<flatbuffers::Offset<fb::TowerInput>> many(inputs, input);
  const auto tower = fb::CreateTower(b, b.CreateVector(many), b.CreateVector(std::vector<flatbuffers::Offset<fb::DenseLayer>>{}), false);
  const auto catalogue = fb::CreateCatalogue(b, 1, -1, -1, strings(b, {}));
  const auto retrieval = fb::CreateRetrievalStage(b, tower, tower, 1.0f, catalogue);
  return finish(b, fb::CreateModel(b, funnel::kFormatVersion, b.CreateString("test"), b.CreateVector(std::vector{feature}),
                                   b.CreateVector(tensors), retrieval));
}

// A ranking stage with one sequence co-action whose micro-MLP (256 -> 4096 -> 4096) needs rows of
// 17.8 million floats: more than any request should be sized from.
std::vector<uint8_t> huge_micro_mlp() {
  flatbuffers::FlatBufferBuilder b;
  const auto feature = fb::CreateFeatureSpec(b, b.CreateString("item"), fb::FeatureKind::Categorical, 2, 0, 0, 0, 1);
  const std::vector<flatbuffers::Offset<fb::Tensor>> tensors = {f32_tensor(b, "feed", {2, 256}), f32_tensor(b, "induction", {2, 4})};
  const auto items = fb::CreateItemTable(b, b.CreateVector(std::vector<uint32_t>{0}), b.CreateVector(std::vector<uint32_t>{1}), strings(b, {"a"}));
  const auto unit = fb::CreateCoAction(b, 0, 0, true, 1, 0, b.CreateVector(std::vector<uint32_t>{4096, 4096}));
  const auto ranking = fb::CreateRankingStage(b, 0, 0, 0, 10, b.CreateVector(std::vector{unit}),
                                              b.CreateVector(std::vector<flatbuffers::Offset<fb::DenseLayer>>{}));
  return finish(b, fb::CreateModel(b, funnel::kFormatVersion, b.CreateString("test"), b.CreateVector(std::vector{feature}),
                                   b.CreateVector(tensors), 0, 0, ranking, items));
}

std::vector<uint8_t> with_features(const std::vector<std::pair<std::string, fb::FeatureKind>>& specs) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fb::FeatureSpec>> features;
  for (const auto& [name, kind] : specs) features.push_back(fb::CreateFeatureSpec(b, b.CreateString(name), kind, 1));
  return finish(b, fb::CreateModel(b, funnel::kFormatVersion, b.CreateString("test"), b.CreateVector(features)));
}

funnel::Status load(const std::vector<uint8_t>& bytes, std::unique_ptr<Model>* model) {
  return Model::load_bytes(bytes.data(), bytes.size(), model);
}

}  // namespace

TEST_CASE("Hostile files: sizes are limited before a request allocates from them", "[hostile]") {
  std::unique_ptr<Model> model;
  SECTION("65536 tower inputs sharing one table: 2^32 floats, which a uint32 width counted as 0 (was a heap overflow)") {
    const funnel::Status status = load(wide_towers(65536), &model);
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Contains("user tower has 65536 inputs; at most 4096"));
  }
  SECTION("tower inputs wider together than the row limit") {
    const funnel::Status status = load(wide_towers(2), &model);
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Contains("user tower inputs are wider than 65536 floats together"));
  }
  SECTION("one input of the widest table is fine") {
    const funnel::Status status = load(wide_towers(1), &model);
    INFO(status.to_string());
    REQUIRE(status.is_ok());
    std::vector<funnel::Recommendation> top;
    CHECK(model->retrieve(funnel::Features{}.set("f", "x"), {.k = 3, .exclude = {}}, &top).is_ok());
    CHECK(top.empty());
  }
  SECTION("a co-action micro-MLP larger than the row limit") {
    const funnel::Status status = load(huge_micro_mlp(), &model);
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Contains("co-action 0: the micro-MLP is larger than 65536 floats"));
  }
  SECTION("more features than a model may have") {
    std::vector<std::pair<std::string, fb::FeatureKind>> specs;
    // (std::to_string appended to a string, not "f" + ...: GCC 12 warns falsely about the latter, -Wrestrict.)
    for (int f = 0; f < 4097; ++f) specs.emplace_back(std::string("f").append(std::to_string(f)), fb::FeatureKind::Dense);
    const funnel::Status status = load(with_features(specs), &model);
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Contains("4097 features"));
    specs.pop_back();
    CHECK(load(with_features(specs), &model).is_ok());
  }
  SECTION("a negative enum value is an unknown kind, not a categorical feature") {
    const funnel::Status status = load(with_features({{"f", static_cast<fb::FeatureKind>(-1)}}), &model);
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Contains("feature 'f' has an unknown kind"));
  }
}

namespace {

// A golden file unpacked, changed by `edit`, and packed again.
template <class Edit>
std::vector<uint8_t> edited(const std::string& name, Edit edit) {
  const std::vector<uint8_t> bytes = read_bytes(kGolden + "/" + name);
  std::unique_ptr<fb::ModelT> model(fb::GetModel(bytes.data())->UnPack());
  edit(*model);
  flatbuffers::FlatBufferBuilder b;
  fb::FinishModelBuffer(b, fb::Model::Pack(b, model.get()));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

}  // namespace

TEST_CASE("Key tables: load checks their shape only, verify() all of them, and reads of a damaged one stay safe", "[hostile]") {
  std::unique_ptr<Model> model;
  REQUIRE(Model::load_file(kGolden + "/retrieval.funnel", &model).is_ok());
  CHECK(model->verify().is_ok());
  // A value for every feature of a model: what a request would bring.
  const auto someone = [&model] {
    funnel::Features user;
    for (size_t f = 0; f < model->feature_count(); ++f) {
      const funnel::FeatureInfo info = model->feature_info(f);
      user.set(info.name, info.kind == "dense" ? funnel::FeatureValue::of_number(1.0) : funnel::FeatureValue::of_string("x"));
    }
    return user;
  };
  funnel::RetrieveOptions options;
  options.k = 5;
  std::vector<funnel::Recommendation> out;

  SECTION("keys out of order: found or missed, never a crash") {
    const auto bytes = edited("retrieval.funnel", [](fb::ModelT& m) {
      auto& order = m.retrieval->catalogue->item_keys->order;
      std::swap(order.front(), order.back());
    });
    REQUIRE(load(bytes, &model).is_ok());
    CHECK_THAT(model->verify().message(), Contains("catalogue keys: keys are duplicated or out of order"));
    for (size_t i = 0; i < model->catalogue_size(); ++i) (void)model->find_item(model->item_key(i));
    CHECK(model->retrieve(someone(), options, &out).is_ok());
  }
  SECTION("a key that ends past the bytes reads as empty") {
    const auto bytes = edited("retrieval.funnel", [](fb::ModelT& m) {
      auto& keys = *m.retrieval->catalogue->item_keys;
      keys.ends.back() = static_cast<uint32_t>(keys.bytes.size() + 100);
    });
    REQUIRE(load(bytes, &model).is_ok());
    CHECK_THAT(model->verify().message(), Contains("ends outside its bytes"));
    CHECK(model->item_key(model->catalogue_size() - 1).empty());
    CHECK(model->find_item("no such item") == -1);
  }
  SECTION("a sorted-order entry out of range") {
    const auto bytes = edited("retrieval.funnel", [](fb::ModelT& m) { m.retrieval->catalogue->item_keys->order[3] = 1u << 30; });
    REQUIRE(load(bytes, &model).is_ok());
    CHECK_THAT(model->verify().message(), Contains("sorted order entry 3 is out of range"));
    for (size_t i = 0; i < model->catalogue_size(); ++i) (void)model->find_item(model->item_key(i));
  }
  SECTION("a vocabulary whose order and ends disagree in length is refused at load") {
    const auto bytes = edited("retrieval.funnel", [](fb::ModelT& m) {
      for (auto& feature : m.features)
        if (feature->values) {
          feature->values->order.pop_back();
          break;
        }
    });
    const funnel::Status status = load(bytes, &model);
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Contains("vocabulary: sorted order has"));
  }
  SECTION("a catalogue without keys is refused at load") {
    const auto bytes = edited("retrieval.funnel", [](fb::ModelT& m) { m.retrieval->catalogue->item_keys.reset(); });
    CHECK_THAT(load(bytes, &model).message(), Contains("catalogue has no keys"));
  }
  SECTION("an item-table id beyond its feature's cardinality: verify() finds it, ranking that item is an error") {
    const auto bytes = edited("ranking-can.funnel", [](fb::ModelT& m) { m.items->ids[0] = 1u << 30; });
    REQUIRE(load(bytes, &model).is_ok());
    CHECK_THAT(model->verify().message(), Contains("beyond its cardinality"));
    const std::string first(model->ranking_item_key(0));
    std::vector<float> probabilities;
    const funnel::Status status = model->rank(someone(), {}, std::vector<std::string>{first}, &probabilities);
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Contains("beyond its cardinality"));
  }
}

TEST_CASE("Model file: a format 1 file is refused with a message to export it again", "[model]") {
  flatbuffers::FlatBufferBuilder b;
  fb::FinishModelBuffer(b, fb::CreateModel(b, 1, b.CreateString("funnel 0.1 (format 1)")));
  const std::vector<uint8_t> bytes(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  std::unique_ptr<Model> model;
  const funnel::Status status = load(bytes, &model);
  CHECK(status.code() == StatusCode::kUnsupported);
  CHECK_THAT(status.message(), Contains("older Funnel: export the model again"));
}
