// libFuzzer target for the JSON requests the model verbs read (train/cli/request_json.cpp): a user's raw
// features (`--user`) and the JSON Lines of a catalogue update (`update-catalogue --add`). Whatever parses
// is then served as the CLI serves it, by the golden three-stage file: the whole cascade, ranking and
// pre-ranking, and the catalogue update, so the SDK's encoding of hostile raw values is fuzzed with the
// parser. Bad input must be a clean error (std::runtime_error or a Status), never a crash, a sanitizer
// report or a leak. The first byte picks the request: even, a user; odd, catalogue items. Every input's text
// also goes through the SDK's own JSON string writer (sdk/src/json_text.hpp: the layer-latency table, a
// bundle's lineage), which must give a JSON string that reads back as the same text wherever the text is
// valid UTF-8. Run by scripts/fuzz.sh; seeds and crashes in tests/data/fuzz-regressions/fuzz_request_json/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "funnel/funnel.hpp"
#include "json_text.hpp"
#include "train/cli/request_json.hpp"

namespace {

const funnel::Model& golden() {
  static const std::unique_ptr<funnel::Model> model = [] {
    std::unique_ptr<funnel::Model> loaded;
    const std::string path = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/golden/three-stages-trained.funnel";
    if (!funnel::Model::load_file(path, &loaded)) std::abort();
    return loaded;
  }();
  return *model;
}

void serve_user(const funnel::Model& model, const funnel::Features& user) {
  funnel::CascadeOptions options;
  options.k = 5;
  options.retrieve_k = 20;
  options.prerank_k = 10;
  options.behaviours = {"i3", "i4", "no such item"};
  options.exclude = {"i0"};
  funnel::CascadeResult result;
  (void)model.recommend(user, options, &result);
  const std::vector<std::string> candidates = {"i0", "i1", "i2", "no such item"};
  std::vector<float> probabilities;
  (void)model.rank(user, options.behaviours, candidates, &probabilities);
  (void)model.prerank(user, {}, candidates, &probabilities);
  std::vector<float> embedding;
  (void)model.user_embedding(user, &embedding);
}

void update_catalogue(const funnel::Model& model, const std::string& text) {
  funnel::CatalogueUpdate update;
  size_t number = 0;
  for (size_t start = 0; start <= text.size() && update.upsert.size() < 8;) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (auto item = funnel::train::cli::item_from_json_line(text.substr(start, end - start), "items.jsonl:" + std::to_string(++number)))
      update.upsert.push_back(std::move(*item));
    start = end + 1;
  }
  if (update.upsert.empty()) return;
  update.remove = {"i7"};
  std::unique_ptr<funnel::Model> updated;
  if (model.update_catalogue(update, &updated)) serve_user(*updated, update.upsert.front().second);
}

// append_json_string's output read back by a JSON parser: the same text (text that is not valid UTF-8 is
// written through as it is, and JSON cannot hold it: nothing to compare).
void check_json_string(const std::string& text) {
  bool utf8 = true;
  try {
    (void)nlohmann::json(text).dump();
  } catch (const nlohmann::json::type_error&) {
    utf8 = false;
  }
  if (!utf8) return;
  std::string written;
  funnel::append_json_string(&written, text);
  const nlohmann::json back = nlohmann::json::parse(written, nullptr, /*allow_exceptions=*/false);
  if (!back.is_string() || back.get_ref<const std::string&>() != text) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const funnel::Model& model = golden();
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_json_string(text);
  try {
    if (data[0] % 2 == 0) serve_user(model, funnel::train::cli::features_from_json(text));
    else update_catalogue(model, text);
  } catch (const std::runtime_error&) {
    // a clean refusal, naming the input
  }
  return 0;
}
