// The model file's checksums (format 3; docs/model-file.md, "Checksums" and "Format versions"): every golden
// file of format 3 carries them and verify() checks them; a byte flipped anywhere in such a file is found, and
// where it lies in a tensor or a key table, verify() names that tensor or table. Format 2 files carry none and
// still load and verify. Writers in the SDK (catalogue updates, bundles) write them and refuse to copy a
// damaged file's bytes under fresh ones. SDK only: no trainer.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "funnel/funnel.hpp"
#include "funnel_generated.h"

using funnel::Model;
using funnel::StatusCode;
using Catch::Matchers::Contains;
namespace fb = funnel::fb;

namespace {

const std::string kGolden = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/golden";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

funnel::Status load(const std::vector<uint8_t>& bytes, std::unique_ptr<Model>* model) {
  return Model::load_bytes(bytes.data(), bytes.size(), model);
}

// The golden files of one format version.
std::vector<std::string> golden_files(uint32_t version) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(kGolden)) {
    if (entry.path().extension() != ".funnel") continue;
    std::unique_ptr<Model> model;
    REQUIRE(Model::load_file(entry.path().string(), &model).is_ok());
    if (model->format_version() == version) out.push_back(entry.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A byte range of the file and the name verify() must give when a byte in it changes.
struct Part {
  size_t begin, end;
  std::string name;
};

template <typename T>
void add_vector(const uint8_t* base, const flatbuffers::Vector<T>* vector, const std::string& name, std::vector<Part>* parts) {
  if (!vector || vector->size() == 0) return;
  const size_t begin = static_cast<size_t>(reinterpret_cast<const uint8_t*>(vector->data()) - base);
  parts->push_back({begin, begin + vector->size() * sizeof(T), name});
}

void add_strings(const uint8_t* base, const fb::StringTable* table, const std::string& name, std::vector<Part>* parts) {
  if (!table) return;
  add_vector(base, table->bytes(), name, parts);
  add_vector(base, table->ends(), name, parts);
  add_vector(base, table->order(), name, parts);
}

// Where every tensor's data and every key table's vectors lie in the file, with the names verify() uses.
std::vector<Part> named_parts(const std::vector<uint8_t>& bytes) {
  const uint8_t* base = bytes.data();
  const fb::Model* root = fb::GetModel(base);
  std::vector<Part> parts;
  for (const fb::Tensor* tensor : *root->tensors()) add_vector(base, tensor->data(), "tensor '" + tensor->name()->str() + "'", &parts);
  for (const fb::FeatureSpec* spec : *root->features())
    add_strings(base, spec->values(), "feature '" + spec->name()->str() + "' vocabulary", &parts);
  if (root->retrieval()) add_strings(base, root->retrieval()->catalogue()->item_keys(), "catalogue keys", &parts);
  if (const fb::ItemTable* items = root->items()) {
    add_strings(base, items->item_keys(), "item table keys", &parts);
    add_vector(base, items->features(), "item table ids", &parts);
    add_vector(base, items->ids(), "item table ids", &parts);
  }
  return parts;
}

const Part* part_at(const std::vector<Part>& parts, size_t at) {
  for (const Part& part : parts)
    if (part.begin <= at && at < part.end) return &part;
  return nullptr;
}

// Makes a field of a table absent, in place, by zeroing its vtable entry (the vtable may be shared with other
// tables of the same layout: they lose it too).
void drop_field(uint8_t* table, flatbuffers::voffset_t field) {
  uint8_t* vtable = table - flatbuffers::ReadScalar<flatbuffers::soffset_t>(table);
  if (field < flatbuffers::ReadScalar<flatbuffers::voffset_t>(vtable)) flatbuffers::WriteScalar<flatbuffers::voffset_t>(vtable + field, 0);
}

// The byte of `copy` at the place `at` points to in `original`.
uint8_t* in_copy(std::vector<uint8_t>& copy, const std::vector<uint8_t>& original, const void* at) {
  return copy.data() + (static_cast<const uint8_t*>(at) - original.data());
}

}  // namespace

TEST_CASE("Checksums: format 3 golden files carry them and verify; format 2 files carry none and still verify", "[checksums][golden]") {
  const std::vector<std::string> v3 = golden_files(3), v2 = golden_files(2);
  REQUIRE(v3.size() >= 2);  // the policy: every format version from 2 on has golden files
  REQUIRE(v2.size() >= 2);
  for (const std::string& name : v3) {
    INFO(name);
    std::unique_ptr<Model> model;
    REQUIRE(Model::load_file(kGolden + "/" + name, &model).is_ok());
    CHECK(model->has_checksums());
    const funnel::Status verified = model->verify();
    INFO(verified.to_string());
    CHECK(verified.is_ok());
  }
  for (const std::string& name : v2) {
    INFO(name);
    std::unique_ptr<Model> model;
    REQUIRE(Model::load_file(kGolden + "/" + name, &model).is_ok());
    CHECK_FALSE(model->has_checksums());
    CHECK(model->verify().is_ok());
  }
}

TEST_CASE("Checksums: a byte flipped anywhere in a format 3 golden file is found, and named where it is a tensor's or a table's",
          "[checksums][golden]") {
  size_t flips = 0, refused_at_load = 0, found = 0, in_named_parts = 0, named = 0;
  std::vector<std::string> names_seen;
  for (const std::string& name : golden_files(3)) {
    INFO(name);
    const std::vector<uint8_t> bytes = read_bytes(kGolden + "/" + name);
    const std::vector<Part> parts = named_parts(bytes);
    REQUIRE(!parts.empty());
    std::vector<uint8_t> damaged = bytes;
    for (size_t at = 0; at < bytes.size(); ++at) {
      const uint8_t flip = static_cast<uint8_t>(1u << (at % 8));
      damaged[at] ^= flip;
      ++flips;
      std::unique_ptr<Model> model;
      if (!load(damaged, &model)) {
        ++refused_at_load;
      } else {
        const funnel::Status verified = model->verify();
        if (!verified) ++found;
        else FAIL_CHECK("a flip at byte " << at << " of " << name << " loads and verifies");
        if (const Part* part = part_at(parts, at)) {
          ++in_named_parts;
          if (verified.message().find(part->name + " fails its checksum") != std::string::npos) {
            ++named;
            if (std::find(names_seen.begin(), names_seen.end(), part->name) == names_seen.end()) names_seen.push_back(part->name);
          } else {
            FAIL_CHECK("a flip at byte " << at << " of " << name << " in " << part->name << ": verify() said '" << verified.message() << "'");
          }
        }
      }
      damaged[at] ^= flip;
    }
  }
  // Every flip is caught: refused by load, or found by verify(); inside a tensor or key table, named.
  CHECK(refused_at_load + found == flips);
  CHECK(named == in_named_parts);
  CHECK(in_named_parts > flips / 2);  // most of a file is its tensors and key tables
  std::printf("checksum sweep over the format 3 golden files: %zu flips, %zu refused at load, %zu found by verify(); %zu of %zu in "
              "a tensor or key table named it (%zu parts)\n",
              flips, refused_at_load, found, named, in_named_parts, names_seen.size());
}

TEST_CASE("Checksums: a format 3 file that lost one is refused by verify(); format 2 rules need none", "[checksums]") {
  const std::string name = golden_files(3).front();
  const std::vector<uint8_t> bytes = read_bytes(kGolden + "/" + name);
  const fb::Model* root = fb::GetModel(bytes.data());
  std::unique_ptr<Model> model;
  SECTION("a tensor without its checksum") {
    std::vector<uint8_t> damaged = bytes;
    drop_field(in_copy(damaged, bytes, root->tensors()->Get(0)), fb::Tensor::VT_CHECKSUM);
    REQUIRE(load(damaged, &model).is_ok());
    CHECK(model->verify().code() == StatusCode::kCorruptModel);
    CHECK_THAT(model->verify().message(), Contains("tensor '" + root->tensors()->Get(0)->name()->str() + "' carries no checksum"));
  }
  SECTION("a tensor without its checksum, the whole-file checksum sealed again over that") {
    std::vector<uint8_t> damaged = bytes;
    drop_field(in_copy(damaged, bytes, root->tensors()->Get(0)), fb::Tensor::VT_CHECKSUM);
    REQUIRE(funnel::seal_model_file(damaged));
    REQUIRE(load(damaged, &model).is_ok());
    CHECK(model->verify().code() == StatusCode::kCorruptModel);
    CHECK_THAT(model->verify().message(), Contains("tensor '" + root->tensors()->Get(0)->name()->str() + "' carries no checksum"));
  }
  SECTION("a file without its whole-file checksum") {
    std::vector<uint8_t> damaged = bytes;
    drop_field(in_copy(damaged, bytes, root), fb::Model::VT_CHECKSUM);
    REQUIRE(load(damaged, &model).is_ok());
    CHECK_FALSE(model->has_checksums());
    CHECK_THAT(model->verify().message(), Contains("carries no whole-file checksum"));
  }
  SECTION("the same file declared format 2, with its whole-file checksum gone: what is left still matches") {
    std::vector<uint8_t> v2 = bytes;
    uint8_t* table = in_copy(v2, bytes, root);
    const auto* version = reinterpret_cast<const flatbuffers::Table*>(root)->GetAddressOf(fb::Model::VT_FORMAT_VERSION);
    flatbuffers::WriteScalar<uint32_t>(in_copy(v2, bytes, version), 2);
    drop_field(table, fb::Model::VT_CHECKSUM);
    REQUIRE(load(v2, &model).is_ok());
    CHECK(model->format_version() == 2);
    CHECK(model->verify().is_ok());
    // A format 2 file's checksums, where it has any, are checked all the same.
    std::vector<uint8_t> damaged = v2;
    const fb::Tensor* tensor = root->tensors()->Get(0);
    damaged[static_cast<size_t>(tensor->data()->data() - bytes.data())] ^= 1;
    REQUIRE(load(damaged, &model).is_ok());
    CHECK_THAT(model->verify().message(), Contains("tensor '" + tensor->name()->str() + "' fails its checksum"));
  }
}

TEST_CASE("Checksums: catalogue updates and bundles write format 3 files, and never copy a damaged file", "[checksums]") {
  // A format 2 file updated or bundled becomes a format 3 file with checksums, and answers as before.
  std::unique_ptr<Model> old_file, updated, bundled;
  REQUIRE(Model::load_file(kGolden + "/retrieval.funnel", &old_file).is_ok());
  REQUIRE(old_file->format_version() == 2);
  funnel::CatalogueUpdate update;
  update.remove = {"i3"};
  REQUIRE(old_file->update_catalogue(update, &updated).is_ok());
  CHECK(updated->format_version() == funnel::kFormatVersion);
  CHECK(updated->has_checksums());
  CHECK(updated->verify().is_ok());
  const std::vector<funnel::BundlePart> parts = {{"retrieval.funnel", old_file.get()}};
  REQUIRE(Model::bundle(parts, &bundled).is_ok());
  CHECK(bundled->has_checksums());
  CHECK(bundled->verify().is_ok());
  CHECK(std::equal(bundled->catalogue_embeddings(), bundled->catalogue_embeddings() + bundled->catalogue_size() * bundled->embedding_dim(),
                   old_file->catalogue_embeddings()));
  // verify() reads the parts' checksums only when the whole file's fails: one flipped catalogue byte (the last
  // tensor, so every tensor before it is checked first) shows that each part's checksum was written right.
  for (const Model* written : {updated.get(), bundled.get()}) {
    std::vector<uint8_t> copy(written->bytes().begin(), written->bytes().end());
    const fb::Model* root = fb::GetModel(copy.data());
    const fb::Tensor* last = root->tensors()->Get(root->tensors()->size() - 1);
    REQUIRE(last->name()->str() == "catalogue/embeddings");
    copy[static_cast<size_t>(last->data()->data() - copy.data())] ^= 1;
    std::unique_ptr<Model> damaged;
    REQUIRE(load(copy, &damaged).is_ok());
    CHECK_THAT(damaged->verify().message(), Contains("tensor 'catalogue/embeddings' fails its checksum"));
  }

  // A format 3 file with one flipped weight: the SDK refuses to write it again under fresh checksums.
  const std::string name = golden_files(3).front();
  std::vector<uint8_t> damaged = read_bytes(kGolden + "/" + name);
  const fb::Tensor* tensor = fb::GetModel(damaged.data())->tensors()->Get(0);
  const std::string tensor_name = "tensor '" + tensor->name()->str() + "' fails its checksum";
  damaged[static_cast<size_t>(tensor->data()->data() - damaged.data())] ^= 4;
  std::unique_ptr<Model> model;
  REQUIRE(load(damaged, &model).is_ok());
  if (model->has_retrieval()) {
    const funnel::Status status = model->update_catalogue(update, &updated);
    CHECK(status.code() == StatusCode::kCorruptModel);
    CHECK_THAT(status.message(), Contains(tensor_name));
  }
  const std::vector<funnel::BundlePart> damaged_parts = {{name, model.get()}};
  const funnel::Status status = Model::bundle(damaged_parts, &bundled);
  CHECK(status.code() == StatusCode::kCorruptModel);
  CHECK_THAT(status.message(), Contains(name) && Contains(tensor_name));
}

TEST_CASE("Checksums: three-stages-v3.funnel answers exactly as three-stages.funnel at every stage", "[checksums][golden]") {
  // The same model in format 3 (with checksums) and format 2: the checksums change no answer.
  std::unique_ptr<Model> v2, v3;
  REQUIRE(Model::load_file(kGolden + "/three-stages.funnel", &v2).is_ok());
  REQUIRE(Model::load_file(kGolden + "/three-stages-v3.funnel", &v3).is_ok());
  REQUIRE(v2->format_version() == 2);
  REQUIRE(v3->format_version() == 3);
  const funnel::Features user = funnel::Features().set("user_id", "u3").set("age", 41.0).set("region", "r2").set("device", "ios");
  const funnel::Features item = funnel::Features().set("item_id", "i5").set("category", "c1").set("price", 9.5).set(
      "tags", std::vector<std::string>{"t1"});
  std::vector<float> a, b;
  REQUIRE(v2->user_embedding(user, &a).is_ok());
  REQUIRE(v3->user_embedding(user, &b).is_ok());
  CHECK(a == b);
  REQUIRE(v2->item_embedding(item, &a).is_ok());
  REQUIRE(v3->item_embedding(item, &b).is_ok());
  CHECK(a == b);
  funnel::RetrieveOptions top;
  top.k = 20;
  std::vector<funnel::Recommendation> hits2, hits3;
  REQUIRE(v2->retrieve(user, top, &hits2).is_ok());
  REQUIRE(v3->retrieve(user, top, &hits3).is_ok());
  REQUIRE(hits2.size() == 20);
  REQUIRE(hits3.size() == hits2.size());
  for (size_t i = 0; i < hits2.size(); ++i) CHECK((hits2[i].index == hits3[i].index && hits2[i].score == hits3[i].score));
  const std::vector<std::string> behaviours = {"i3", "i7"}, candidates = {"i1", "i5", "i9", "i12"};
  REQUIRE(v2->prerank(user, behaviours, candidates, &a).is_ok());
  REQUIRE(v3->prerank(user, behaviours, candidates, &b).is_ok());
  CHECK(a == b);
  REQUIRE(v2->rank(user, behaviours, candidates, &a).is_ok());
  REQUIRE(v3->rank(user, behaviours, candidates, &b).is_ok());
  CHECK(a == b);
  funnel::CascadeOptions options;
  options.behaviours = behaviours;
  funnel::CascadeResult r2, r3;
  REQUIRE(v2->recommend(user, options, &r2).is_ok());
  REQUIRE(v3->recommend(user, options, &r3).is_ok());
  REQUIRE(r2.items.size() == 10);
  REQUIRE(r3.items.size() == r2.items.size());
  for (size_t i = 0; i < r2.items.size(); ++i)
    CHECK((r2.items[i].key == r3.items[i].key && r2.items[i].score == r3.items[i].score &&
           r2.items[i].retrieval_score == r3.items[i].retrieval_score));
  REQUIRE(r3.stages.size() == 3);
  for (size_t s = 0; s < r2.stages.size(); ++s)
    CHECK((r2.stages[s].stage == r3.stages[s].stage && r2.stages[s].scored == r3.stages[s].scored && r2.stages[s].kept == r3.stages[s].kept));
}

TEST_CASE("Format versions: 2 and 3 load, 1 and newer ones are refused with what to do", "[checksums][model]") {
  const auto file_of_version = [](uint32_t version) {
    flatbuffers::FlatBufferBuilder b;
    fb::FinishModelBuffer(b, fb::CreateModel(b, version, b.CreateString("test")));
    return std::vector<uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize());
  };
  std::unique_ptr<Model> model;
  const funnel::Status old_status = load(file_of_version(1), &model);
  CHECK(old_status.code() == StatusCode::kUnsupported);
  CHECK_THAT(old_status.message(), Contains("export the model again") && Contains("reads versions 2 to 3"));
  const funnel::Status new_status = load(file_of_version(funnel::kFormatVersion + 1), &model);
  CHECK(new_status.code() == StatusCode::kUnsupported);
  CHECK_THAT(new_status.message(), Contains("newer than this SDK reads: update the SDK (this SDK reads versions 2 to 3)"));
  for (uint32_t version = funnel::kOldestFormatVersion; version <= funnel::kFormatVersion; ++version) {
    INFO(version);
    CHECK(load(file_of_version(version), &model).is_ok());
  }
}
