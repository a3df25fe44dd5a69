// libFuzzer target for the model loader. Any bytes go to Model::load_bytes; when they load, the target
// does what an application does next with a validated file (inspect it, encode a user from raw features,
// retrieve, embed an item, rank, pre-rank, the cascade), so the validator is fuzzed together with the code that trusts it.
// A file that passes validation must never crash, read out of bounds or overflow. Run by scripts/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "funnel/funnel.hpp"

namespace {

// A raw value of the kind the feature declares; `variant` picks among a few shapes of input.
funnel::FeatureValue value_for(const funnel::FeatureInfo& info, int variant) {
  if (info.kind == "dense") return funnel::FeatureValue::of_number(variant ? -3.5 : 31.0);
  if (info.kind == "multi_categorical") {
    if (variant) return funnel::FeatureValue::of_string("g1|g2||x");
    return funnel::FeatureValue::of_list({"g1", "not-in-vocabulary", "7"});
  }
  if (variant) return funnel::FeatureValue::of_number(196.0);
  return funnel::FeatureValue::of_string("u1");
}

void use(const funnel::Model& model) {
  // Inspection, as `funnel inspect` does it, with the checks load leaves out: the checksums (the seeds of
  // format 3 carry them, so every mutation of those reaches them), the key tables and item ids. The code below
  // runs whatever it says: reads must be safe on a file that fails it.
  (void)model.has_checksums();
  (void)model.verify();
  (void)model.format_version();
  (void)model.producer();
  (void)model.metadata();
  const size_t features = model.feature_count();
  for (size_t f = 0; f < features; ++f) {
    const funnel::FeatureInfo info = model.feature_info(f);
    (void)model.feature_index(info.name);
  }
  (void)model.feature_index("no such feature");

  // A user with a couple of raw features, one of them missing: an error, never a crash.
  funnel::Features partial;
  for (size_t f = 0; f + 1 < features && f < 2; ++f) {
    const funnel::FeatureInfo info = model.feature_info(f);
    partial.set(info.name, value_for(info, 0));
  }
  // Every feature, in two shapes of input.
  funnel::Features users[2];
  for (int variant = 0; variant < 2; ++variant)
    for (size_t f = 0; f < features; ++f) {
      const funnel::FeatureInfo info = model.feature_info(f);
      users[variant].set(info.name, value_for(info, variant));
    }

  std::vector<std::string> keys;
  if (model.has_retrieval()) {
    (void)model.embedding_dim();
    const size_t items = model.catalogue_size();
    for (size_t i = 0; i < items && i < 3; ++i) keys.emplace_back(model.item_key(i));
    if (items > 3) keys.emplace_back(model.item_key(items - 1));
    for (const std::string& key : keys) (void)model.find_item(key);
    (void)model.find_item("no such item");

    funnel::RetrieveOptions options;
    options.k = 10;
    options.exclude = {keys.empty() ? std::string("i0") : keys[0], "no such item"};
    std::vector<funnel::Recommendation> top;
    (void)model.retrieve(partial, options, &top);
    for (const funnel::Features& user : users) {
      (void)model.retrieve(user, options, &top);
      for (const funnel::Recommendation& r : top) (void)model.item_key(r.index);
    }
    std::vector<float> embedding;
    (void)model.user_embedding(users[0], &embedding);

    // A new item embedded from its raw features by the item tower.
    funnel::EncodedFeatures encoded;
    if (model.encode(users[1], model.item_tower(), &encoded)) {
      std::vector<float> scratch(model.item_tower().scratch_size());
      std::vector<float> out(model.item_tower().output_dim());
      funnel::tower_forward(model.item_tower(), encoded, scratch.data(), out.data());
    }
  }

  // The ranking and the pre-ranking stage, the same calls for each.
  for (const bool pre : {false, true}) {
    if (!(pre ? model.has_pre_ranking() : model.has_ranking())) continue;
    const auto score = [&](const funnel::Features& user, const std::vector<std::string>& behaviours,
                           const std::vector<std::string>& candidates, std::vector<float>* out) {
      (void)(pre ? model.prerank(user, behaviours, candidates, out) : model.rank(user, behaviours, candidates, out));
    };
    (void)model.item_table_size();
    // The built-in dataset's item keys, which the seed files' item tables hold, then the catalogue's.
    std::vector<std::string> candidates = {"i0", "i1", "i2"};
    for (size_t i = 0; i < keys.size() && i < candidates.size(); ++i) candidates[i] = keys[i];
    const std::vector<std::string> behaviours = {"i3", "i4", "no such item", "i5"};
    std::vector<float> probabilities;
    score(partial, behaviours, candidates, &probabilities);
    for (const funnel::Features& user : users) {
      score(user, behaviours, candidates, &probabilities);
      score(user, {}, candidates, &probabilities);
    }
    score(funnel::Features{}, behaviours, std::vector<std::string>{"no such item"}, &probabilities);
  }

  // The whole cascade the file holds, with the caller's candidates where it has no retrieval stage.
  funnel::CascadeOptions cascade;
  cascade.k = 3;
  cascade.retrieve_k = 8;
  cascade.prerank_k = 5;
  cascade.behaviours = {"i3", "no such item"};
  cascade.candidates = {"i0", "i1", "i2", "i3"};
  funnel::CascadeResult result;
  (void)model.recommend(users[0], cascade, &result);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<funnel::Model> model;
  if (funnel::Model::load_bytes(data, size, &model)) use(*model);
  return 0;
}
