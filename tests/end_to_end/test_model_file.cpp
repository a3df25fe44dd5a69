// The loader trusts nothing: damaged, truncated, foreign and absurd files are refused with a message.
#include <catch2/catch.hpp>
#include <cstring>

#include "funnel/funnel.hpp"
#include "funnel_generated.h"
#include "train/core/rng.hpp"
#include "support.hpp"

using funnel::Model;
using funnel::StatusCode;
using Catch::Matchers::Contains;

namespace {

funnel::Status load(const std::vector<uint8_t>& bytes, std::unique_ptr<Model>* model) {
  return Model::load_bytes(bytes.data(), bytes.size(), model);
}

funnel::Features some_user() {
  const auto& data = funnel::test::small_dataset();
  return data.users.raw[3];
}

// A minimal model with one tensor of the given shape and byte count, for the limit checks.
std::vector<uint8_t> model_with_tensor(std::vector<uint64_t> shape, size_t bytes) {
  flatbuffers::FlatBufferBuilder builder;
  std::vector<uint8_t> data(bytes, 0);
  const auto tensor = funnel::fb::CreateTensor(builder, builder.CreateString("t"), builder.CreateVector(shape), funnel::fb::DType::F32,
                                               builder.CreateVector(data));
  std::vector<flatbuffers::Offset<funnel::fb::Tensor>> tensors = {tensor};
  const auto root = funnel::fb::CreateModel(builder, funnel::kFormatVersion, builder.CreateString("test"), 0, builder.CreateVector(tensors));
  funnel::fb::FinishModelBuffer(builder, root);
  return {builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize()};
}

}  // namespace

TEST_CASE("Model file: a valid export loads and recommends", "[model]") {
  const auto bytes = funnel::test::small_model_bytes();
  std::unique_ptr<Model> model;
  REQUIRE(load(bytes, &model).is_ok());
  CHECK(model->has_retrieval());
  CHECK(model->catalogue_size() == funnel::test::small_dataset().items.size());
  std::vector<funnel::Recommendation> out;
  funnel::RetrieveOptions options;
  options.k = 5;
  REQUIRE(model->retrieve(some_user(), options, &out).is_ok());
  CHECK(out.size() == 5);
  for (size_t i = 1; i < out.size(); ++i) CHECK(out[i - 1].score >= out[i].score);
  CHECK(model->metadata() == std::vector<std::pair<std::string, std::string>>{{"purpose", "test"}});
}

TEST_CASE("Model file: from a path by mmap, and missing paths", "[model]") {
  funnel::test::TempDir dir;
  const auto bytes = funnel::test::small_model_bytes();
  const std::string path = dir.write("m.funnel", std::string(bytes.begin(), bytes.end()));
  std::unique_ptr<Model> model;
  REQUIRE(Model::load_file(path, &model).is_ok());
  CHECK(model->byte_size() == bytes.size());
  const funnel::Status missing = Model::load_file(dir.file("absent.funnel"), &model);
  CHECK(missing.code() == StatusCode::kNotFound);
  CHECK_THAT(missing.message(), Contains("absent.funnel"));
  CHECK(model == nullptr);
  const funnel::Status empty = Model::load_file(dir.write("empty.funnel", ""), &model);
  CHECK(empty.code() == StatusCode::kCorruptModel);
}

TEST_CASE("Model file: every truncation is refused", "[model][hostile]") {
  const auto bytes = funnel::test::small_model_bytes();
  std::unique_ptr<Model> model;
  for (size_t size : {size_t{0}, size_t{1}, size_t{4}, size_t{7}, size_t{8}, size_t{16}, size_t{100}}) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(size));
    const funnel::Status status = load(cut, &model);
    INFO("size " << size << ": " << status.to_string());
    CHECK(status.code() == StatusCode::kCorruptModel);
  }
  for (size_t step = 1; step < 64; ++step) {
    const size_t size = bytes.size() * step / 64;
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(size));
    const funnel::Status status = load(cut, &model);
    INFO("size " << size << ": " << status.to_string());
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK(!status.message().empty());
  }
}

TEST_CASE("Model file: bit flips are refused at load or found by verify(), never a crash", "[model][hostile]") {
  const auto bytes = funnel::test::small_model_bytes();
  funnel::train::Rng rng(11);
  size_t refused = 0, loaded = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::vector<uint8_t> damaged = bytes;
    // Flips concentrated in the first and last 4 KiB, where the tables and offsets live.
    const size_t region = std::min<size_t>(4096, damaged.size());
    const size_t at = trial % 2 ? rng.below(region) : damaged.size() - 1 - rng.below(region);
    damaged[at] ^= static_cast<uint8_t>(1u << rng.below(8));
    std::unique_ptr<Model> model;
    const funnel::Status status = load(damaged, &model);
    if (!status) {
      ++refused;
      CHECK(!status.message().empty());
      continue;
    }
    ++loaded;
    // The exporter's checksums find every changed byte; a file that loads must be safe to use all the same.
    CHECK(model->verify().code() == StatusCode::kCorruptModel);
    std::vector<funnel::Recommendation> out;
    funnel::RetrieveOptions options;
    options.k = 3;
    (void)model->retrieve(some_user(), options, &out);
  }
  CHECK(refused > 0);
  CHECK(refused + loaded == 400);
}

TEST_CASE("Model file: a foreign identifier is named", "[model][hostile]") {
  auto bytes = funnel::test::small_model_bytes();
  std::memcpy(bytes.data() + 4, "TFL3", 4);
  std::unique_ptr<Model> model;
  const funnel::Status status = load(bytes, &model);
  CHECK(status.code() == StatusCode::kCorruptModel);
  CHECK_THAT(status.message(), Contains("'TFL3'") && Contains("FNL1"));
}

TEST_CASE("Model file: absurd sizes are refused before any allocation", "[model][hostile]") {
  std::unique_ptr<Model> model;
  SECTION("a shape far larger than the file") {
    const funnel::Status status = load(model_with_tensor({uint64_t{1} << 40, uint64_t{1} << 40}, 16), &model);
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Contains("absurd shape"));
  }
  SECTION("a shape whose byte count overflows") {
    const funnel::Status status = load(model_with_tensor({uint64_t{1} << 62, 4}, 16), &model);
    CHECK(status.code() == StatusCode::kCorruptModel);
  }
  SECTION("data that disagrees with the shape") {
    const funnel::Status status = load(model_with_tensor({3, 3}, 32), &model);
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Contains("holds 32 bytes"));
  }
  SECTION("a consistent tensor is fine") { CHECK(load(model_with_tensor({2, 4}, 32), &model).is_ok()); }
}

TEST_CASE("Model file: a newer format version is reported as unsupported", "[model]") {
  flatbuffers::FlatBufferBuilder builder;
  const auto root = funnel::fb::CreateModel(builder, funnel::kFormatVersion + 1);
  funnel::fb::FinishModelBuffer(builder, root);
  std::vector<uint8_t> bytes(builder.GetBufferPointer(), builder.GetBufferPointer() + builder.GetSize());
  std::unique_ptr<Model> model;
  const funnel::Status status = load(bytes, &model);
  CHECK(status.code() == StatusCode::kUnsupported);
  CHECK_THAT(status.message(), Contains("newer"));
}

TEST_CASE("Model file: load_view needs aligned memory", "[model]") {
  const auto bytes = funnel::test::small_model_bytes();
  std::vector<uint8_t> shifted(bytes.size() + 64);
  uint8_t* base = shifted.data();
  while (reinterpret_cast<uintptr_t>(base) % 32 != 1) ++base;
  std::memcpy(base, bytes.data(), bytes.size());
  std::unique_ptr<Model> model;
  CHECK(Model::load_view(base, bytes.size(), &model).code() == StatusCode::kInvalidArgument);
}

TEST_CASE("Model file: the same seed gives byte-identical files", "[model][determinism]") {
  CHECK(funnel::test::small_model_bytes(3) == funnel::test::small_model_bytes(3));
  CHECK(funnel::test::small_model_bytes(3) != funnel::test::small_model_bytes(4));
}
