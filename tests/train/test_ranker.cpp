// The ranking stage end to end: gradient checks of the whole model (embeddings, pooling over real
// behaviours, co-action, PReLU MLP), trainer-vs-SDK parity on the exported file, training, errors.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <memory>

#include "train/core/checkpoint.hpp"
#include "train/data/ctr_data.hpp"
#include "train/core/errors.hpp"
#include "train/export/export.hpp"
#include "funnel/model.hpp"
#include "gradient_check.hpp"
#include "train/ranking/ranker_training.hpp"
#include "train/ranking/ranker_model.hpp"
#include "support.hpp"
#include "train/retrieval/two_tower.hpp"

using namespace funnel::train;
using funnel::test::expect_close;
using funnel::test::numeric_gradient;
using funnel::test::random_values;

namespace {

const CtrInstances& small_instances() { return funnel::test::small_ctr().instances; }

RankerConfig small_config(const std::string& variant) {
  RankerConfig config = funnel::test::small_ranker_config();
  config.model = variant == "dnn" ? "dnn" : "can";
  if (variant == "full") {
    // Everything optional at once: user features (one of them a co-action feed), mean pooling, biases,
    // both optional independence levels.
    config.user_features = {"age", "region"};
    config.pooling = "mean";
    config.coaction = {"item_id:item_id", "item_id:category", "category:category", "item_id:region"};
    config.coaction_bias = true;
    config.combination_independence = true;
    config.order_independence = true;
  }
  if (variant == "shared" || variant == "shared-wide") {
    // No parameter independence: the pairs read the features' own embeddings. "shared": item_id's embedding
    // is the micro-MLP's parameters and its first 4 values the feed, category's and region's embeddings
    // (4 wide) are whole feeds. "shared-wide": every feed is the prefix of a wider embedding.
    config.parameter_independence = false;
    config.order_independence = true;
    config.coaction_bias = true;
    config.user_features = {"age", "region"};
    config.coaction = {"item_id:item_id", "item_id:category", "item_id:region"};
    if (variant == "shared-wide") {
      config.embedding_dim = 5;
      config.user_features = {"region"};
      config.coaction = {"category:category", "item_id:category", "item_id:region"};
    }
  }
  return config;
}

// A batch whose histories have every length from 0 to past max_history.
std::vector<uint32_t> varied_batch(const CtrInstances& instances, size_t size) {
  std::vector<uint32_t> batch;
  std::vector<bool> seen_length(7, false);
  const CtrSplit& train = instances.train;
  for (uint32_t i = 0; i < train.size() && batch.size() < size; ++i) {
    const uint32_t h = train.history[i];
    const size_t length = std::min<size_t>(instances.history_offsets[h + 1] - instances.history_offsets[h], 6);
    if (!seen_length[length] || batch.size() + 7 < size) {
      seen_length[length] = true;
      batch.push_back(i);
    }
  }
  return batch;
}

}  // namespace

TEST_CASE("Ranker: gradients of every parameter through the whole model", "[gradient][ranker]") {
  const auto& data = funnel::test::small_dataset();
  const CtrInstances& instances = small_instances();
  for (const std::string variant : {"dnn", "can", "full", "shared", "shared-wide"}) {
    SECTION(variant) {
      const RankerConfig config = small_config(variant);
      RankerModel model(data, config);
      Rng rng(5);
      model.init(rng);
      const std::vector<uint32_t> batch = varied_batch(instances, 12);
      const std::vector<float> weights = random_values(batch.size(), rng);
      std::vector<float> logits(batch.size());
      const auto loss = [&] {
        model.forward(instances, instances.train, batch, logits.data());
        double sum = 0.0;
        for (size_t b = 0; b < batch.size(); ++b) sum += static_cast<double>(logits[b]) * weights[b];
        return sum;
      };
      loss();
      model.backward(weights);
      // Entries whose step crosses PReLU's kink are skipped (the PReLU layer has its own check away from
      // the kink); they must stay rare.
      size_t checked = 0, skipped = 0;
      for (Parameter* p : model.parameters()) {
        // The touched rows of a table (or every entry of a dense parameter), a bounded sample of each.
        std::vector<size_t> entries;
        if (p->sparse) {
          for (uint32_t row : p->touched)
            for (size_t k = 0; k < p->row_size; k += std::max<size_t>(1, p->row_size / 5)) entries.push_back(row * p->row_size + k);
        } else {
          for (size_t k = 0; k < p->size(); k += std::max<size_t>(1, p->size() / 12)) entries.push_back(k);
        }
        INFO("parameter " << p->name);
        CHECK(!entries.empty());
        for (size_t e = 0; e < entries.size() && e < 40; ++e) {
          const size_t k = entries[e * std::max<size_t>(1, entries.size() / 40) % entries.size()];
          if (funnel::test::check_away_from_kinks(p->value[k], p->grad[k], loss, p->name + "[" + std::to_string(k) + "]")) ++checked;
          else ++skipped;
        }
      }
      CHECK(checked > 50);
      CHECK(skipped * 20 <= checked);
    }
  }
}

TEST_CASE("Ranker: the SDK scores the exported file as the trainer does, from raw features and item keys", "[parity][ranker]") {
  const auto& data = funnel::test::small_dataset();
  const CtrInstances& instances = small_instances();
  for (const std::string variant : {"dnn", "can", "full", "shared", "shared-wide"}) {
    SECTION(variant) {
      RankerModel model(data, small_config(variant));
      Rng rng(6);
      model.init(rng);
      const std::vector<uint8_t> bytes = export_ranker(data, model, {{"purpose", "test"}});
      std::unique_ptr<funnel::Model> loaded;
      const funnel::Status status = funnel::Model::load_bytes(bytes.data(), bytes.size(), &loaded);
      REQUIRE(status.is_ok());
      REQUIRE(loaded->has_ranking());
      const CtrSplit& test = instances.test;
      size_t compared = 0;
      for (size_t begin = 0; begin < test.size(); begin += 3) {  // a positive and its 2 negatives
        std::vector<uint32_t> group = {static_cast<uint32_t>(begin), static_cast<uint32_t>(begin + 1), static_cast<uint32_t>(begin + 2)};
        std::vector<float> logits(3);
        model.forward(instances, test, group, logits.data());
        const uint32_t h = test.history[begin];
        std::vector<std::string> behaviours, candidates;
        for (uint32_t k = instances.history_offsets[h]; k < instances.history_offsets[h + 1]; ++k)
          behaviours.push_back(data.items.keys[instances.history_items[k]]);
        for (uint32_t i : group) candidates.push_back(data.items.keys[test.target[i]]);
        std::vector<float> probabilities;
        REQUIRE(loaded->rank(data.users.raw[test.user[begin]], behaviours, candidates, &probabilities).is_ok());
        for (size_t c = 0; c < 3; ++c) {
          const double expected = 1.0 / (1.0 + std::exp(-static_cast<double>(logits[c])));
          CHECK(probabilities[c] == Approx(expected).margin(1e-5));
        }
        ++compared;
      }
      CHECK(compared == test.size() / 3);
    }
  }
}

TEST_CASE("Ranker: SDK errors name the problem and leave the model usable", "[ranker]") {
  const auto& data = funnel::test::small_dataset();
  RankerModel model(data, small_config("full"));
  Rng rng(7);
  model.init(rng);
  const std::vector<uint8_t> bytes = export_ranker(data, model, {});
  std::unique_ptr<funnel::Model> loaded;
  REQUIRE(funnel::Model::load_bytes(bytes.data(), bytes.size(), &loaded).is_ok());
  const funnel::Features user = data.users.raw[0];
  std::vector<float> p;
  const std::vector<std::string> history = {data.items.keys[0], "never-seen"};
  auto status = loaded->rank(user, history, std::vector<std::string>{"no-such-item"}, &p);
  CHECK(status.code() == funnel::StatusCode::kNotFound);
  CHECK_THAT(status.message(), Catch::Contains("no-such-item"));
  status = loaded->rank(funnel::Features{}, history, std::vector<std::string>{data.items.keys[1]}, &p);
  CHECK(status.code() == funnel::StatusCode::kInvalidArgument);
  CHECK_THAT(status.message(), Catch::Contains("missing feature"));
  // An unknown behaviour counts with out-of-vocabulary ids; the call succeeds.
  REQUIRE(loaded->rank(user, history, std::vector<std::string>{data.items.keys[1], data.items.keys[2]}, &p).is_ok());
  CHECK(p.size() == 2);
  for (float v : p) CHECK((v > 0.0f && v < 1.0f));
}

TEST_CASE("Ranker: config errors name the field or the feature", "[ranker]") {
  const auto& data = funnel::test::small_dataset();
  RankerConfig config = small_config("can");
  config.coaction = {"price:item_id"};
  CHECK_THROWS_WITH(RankerModel(data, config), Catch::Contains("induction side"));
  config.coaction = {"item_id:price"};
  CHECK_THROWS_WITH(RankerModel(data, config), Catch::Contains("feed"));
  config.coaction = {};
  config.item_features = {"tags"};
  CHECK_THROWS_WITH(RankerModel(data, config), Catch::Contains("must be categorical"));
  CHECK_THROWS_WITH(ranker_config_from_json({{"loss", "hinge"}}, "test.json"), Catch::Contains("loss must be"));
  CHECK_THROWS_WITH(ranker_config_from_json({{"coaction", {"item_id"}}}, "test.json"), Catch::Contains("induction:feed"));
  CHECK_THROWS_WITH(ranker_config_from_json({{"colour", 1}}, "test.json"), Catch::Contains("unknown field 'colour'"));
}

TEST_CASE("Ranker: training learns the synthetic data, for every loss", "[ranker][training]") {
  CtrDataset ctr{funnel::test::small_dataset(), build_ctr_instances(funnel::test::small_dataset(), CtrOptions{10, 1, 0})};
  for (const std::string loss : {"bce", "focal", "ghm"}) {
    SECTION(loss) {
      RankerConfig config = funnel::test::learning_ranker_config();
      config.loss = loss;
      const RankerResult result = train_ranker(ctr, config);
      INFO("validation AUC " << result.validation.auc << ", test AUC " << result.test.auc);
      // Random scores give 0.5 (with a standard error of about 0.03 on these 400 instances).
      CHECK(result.validation.auc > 0.62);
      CHECK(result.history.size() == 3);
      std::unique_ptr<funnel::Model> loaded;
      REQUIRE(funnel::Model::load_bytes(result.model_file.data(), result.model_file.size(), &loaded).is_ok());
      const CtrMetrics again = evaluate_ranker(*loaded, ctr.data, ctr.instances, ctr.instances.test);
      CHECK(again.auc == Approx(result.test.auc).margin(1e-9));
    }
  }
}

TEST_CASE("Ranker: retrieval and ranking sit side by side in one file", "[ranker][model-file]") {
  const auto& data = funnel::test::small_dataset();
  TrainConfig retrieval_config;
  retrieval_config.seed = 2;
  const TwoTowerModel towers(data, retrieval_config);
  RankerModel ranker(data, small_config("can"));
  Rng rng(8);
  ranker.init(rng);
  const RetrievalPart retrieval{towers, retrieval_config};
  const std::vector<uint8_t> both = export_funnel(data, &retrieval, &ranker, {});
  const std::vector<uint8_t> ranking_only = export_ranker(data, ranker, {});
  const std::vector<uint8_t> retrieval_only = export_two_tower(data, towers, retrieval_config, {});
  std::unique_ptr<funnel::Model> model, ranking_model, retrieval_model;
  REQUIRE(funnel::Model::load_bytes(both.data(), both.size(), &model).is_ok());
  REQUIRE(funnel::Model::load_bytes(ranking_only.data(), ranking_only.size(), &ranking_model).is_ok());
  REQUIRE(funnel::Model::load_bytes(retrieval_only.data(), retrieval_only.size(), &retrieval_model).is_ok());
  CHECK(model->has_retrieval());
  CHECK(model->has_ranking());
  const funnel::Features& user = data.users.raw[3];
  std::vector<funnel::Recommendation> retrieved, expected_retrieved;
  funnel::RetrieveOptions options;
  options.k = 20;
  REQUIRE(model->retrieve(user, options, &retrieved).is_ok());
  REQUIRE(retrieval_model->retrieve(user, options, &expected_retrieved).is_ok());
  REQUIRE(retrieved.size() == expected_retrieved.size());
  std::vector<std::string> candidates;
  for (size_t i = 0; i < retrieved.size(); ++i) {
    CHECK(retrieved[i].key == expected_retrieved[i].key);
    candidates.emplace_back(retrieved[i].key);
  }
  const std::vector<std::string> behaviours = {data.items.keys[5], data.items.keys[9]};
  std::vector<float> ranked, expected_ranked;
  REQUIRE(model->rank(user, behaviours, candidates, &ranked).is_ok());
  REQUIRE(ranking_model->rank(user, behaviours, candidates, &expected_ranked).is_ok());
  CHECK(ranked == expected_ranked);
}

TEST_CASE("Ranker: a loss that stops being finite stops training with epoch, step and learning rate", "[ranker][training]") {
  CtrDataset ctr{funnel::test::small_dataset(), build_ctr_instances(funnel::test::small_dataset(), CtrOptions{5, 1, 0})};
  RankerConfig config = small_config("can");
  config.learning_rate = 1e30f;
  try {
    train_ranker(ctr, config);
    FAIL("training went on with an infinite learning rate");
  } catch (const TrainingError& e) {
    CHECK_THAT(e.what(), Catch::Contains("the loss became") && Catch::Contains("epoch 1") && Catch::Contains("step") &&
                             Catch::Contains("learning rate"));
  }
}

TEST_CASE("Ranker: bit flips in a ranking file are refused or harmless, never a crash", "[ranker][model][hostile]") {
  const auto& data = funnel::test::small_dataset();
  RankerModel model(data, small_config("full"));
  Rng rng(12);
  model.init(rng);
  const std::vector<uint8_t> bytes = export_ranker(data, model, {});
  const std::vector<std::string> behaviours = {data.items.keys[1], data.items.keys[2], data.items.keys[3]};
  const std::vector<std::string> candidates = {data.items.keys[4], data.items.keys[5]};
  size_t refused = 0, loaded = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::vector<uint8_t> damaged = bytes;
    // Mostly in the first and last 4 KiB, where the tables, vectors of indices and offsets live.
    const size_t region = std::min<size_t>(4096, damaged.size());
    const size_t at = trial % 3 == 0 ? rng.below(damaged.size()) : trial % 3 == 1 ? rng.below(region) : damaged.size() - 1 - rng.below(region);
    damaged[at] ^= static_cast<uint8_t>(1u << rng.below(8));
    std::unique_ptr<funnel::Model> loaded_model;
    const funnel::Status status = funnel::Model::load_bytes(damaged.data(), damaged.size(), &loaded_model);
    if (!status) {
      ++refused;
      CHECK(!status.message().empty());
      continue;
    }
    ++loaded;
    // A file that passes verification must be safe to use (the sanitizer build watches this).
    std::vector<float> p;
    (void)loaded_model->rank(data.users.raw[0], behaviours, candidates, &p);
  }
  CHECK(refused > 0);
  CHECK(refused + loaded == 400);
}

namespace {

struct SimulatedCrash {};

}  // namespace

TEST_CASE("Ranker: resuming from a checkpoint reproduces the uninterrupted run bit for bit", "[ranker][checkpoint]") {
  const CtrDataset ctr{funnel::test::small_dataset(), small_instances()};
  // Every part with state of its own: dense (deferred) and lazy Adam, GHM-C's bin counts, focal, co-action.
  for (const char* variant : {"dnn/bce/adam", "can/ghm/adam", "full/focal/lazy_adam"}) {
    INFO(variant);
    const std::string name = variant;
    RankerConfig config = small_config(name.substr(0, name.find('/')));
    config.loss = name.substr(name.find('/') + 1, name.rfind('/') - name.find('/') - 1);
    config.optimizer = name.substr(name.rfind('/') + 1);
    config.epochs = 3;
    config.batch_size = 32;
    config.threads = 1;
    const RankerResult uninterrupted = train_ranker(ctr, config);

    funnel::test::TempDir dir;
    RankerCheckpoints crashing;
    crashing.checkpoint = dir.file("ranker.ckpt");
    RankerObserver observer;
    observer.on_epoch = [](const RankerEpoch& e) {
      if (e.epoch == 2) throw SimulatedCrash{};
    };
    CHECK_THROWS_AS(train_ranker(ctr, config, observer, {}, nullptr, crashing), SimulatedCrash);
    RankerCheckpoints resuming;
    resuming.resume = crashing.checkpoint;
    std::string note;
    resuming.on_note = [&note](const std::string& text) { note = text; };
    const RankerResult resumed = train_ranker(ctr, config, {}, {}, nullptr, resuming);
    CHECK(resumed.model_file == uninterrupted.model_file);
    CHECK(resumed.best_epoch == uninterrupted.best_epoch);
    CHECK(resumed.history.size() == 3);
    CHECK(resumed.test.auc == uninterrupted.test.auc);
    CHECK_THAT(note, Catch::Contains("after epoch 2"));
  }
}

TEST_CASE("Ranker: a checkpoint of another run is refused, naming the field", "[ranker][checkpoint]") {
  const CtrDataset ctr{funnel::test::small_dataset(), small_instances()};
  RankerConfig config = small_config("can");
  config.epochs = 1;
  config.threads = 1;
  funnel::test::TempDir dir;
  RankerCheckpoints first;
  first.checkpoint = dir.file("ranker.ckpt");
  train_ranker(ctr, config, {}, {}, nullptr, first);
  // One process writes the one file at the path, as before distributed runs existed: its identity holds no
  // world_size or rank (so checkpoints written before them stay resumable), and there is no manifest.
  const Checkpoint written = load_checkpoint(first.checkpoint);
  CHECK(!written.header.at("identity").contains("world_size"));
  CHECK(!written.header.at("identity").contains("rank"));
  CHECK(!std::filesystem::exists(first.checkpoint + ".ranks"));

  RankerCheckpoints resuming;
  resuming.resume = first.checkpoint;
  RankerConfig wider = config;
  wider.embedding_dim = 8;
  CHECK_THROWS_WITH(train_ranker(ctr, wider, {}, {}, nullptr, resuming),
                    Catch::Contains("ranker.ckpt") && Catch::Contains("another run") && Catch::Contains("'ranking.embedding_dim'"));
  RankerConfig other_loss = config;
  other_loss.loss = "ghm";
  CHECK_THROWS_WITH(train_ranker(ctr, other_loss, {}, {}, nullptr, resuming), Catch::Contains("'ranking.loss'"));
  // Other data: more negatives per positive give another number of training instances.
  const CtrDataset more_negatives{funnel::test::small_dataset(), build_ctr_instances(funnel::test::small_dataset(), CtrOptions{5, 3, 3})};
  RankerConfig three = config;
  three.negatives = 3;
  CHECK_THROWS_WITH(train_ranker(more_negatives, three, {}, {}, nullptr, resuming), Catch::Contains("another run"));
  // More epochs and other threads are the same run, continued.
  RankerConfig longer = config;
  longer.epochs = 2;
  longer.threads = 2;
  resuming.checkpoint = dir.file("longer.ckpt");
  CHECK(train_ranker(ctr, longer, {}, {}, nullptr, resuming).history.size() == 2);
  // Fewer epochs than the checkpoint has done are refused, naming the field.
  resuming.resume = resuming.checkpoint;
  resuming.checkpoint.clear();
  CHECK_THROWS_WITH(train_ranker(ctr, config, {}, {}, nullptr, resuming),
                    Catch::Contains("longer.ckpt") && Catch::Contains("2 epochs done") && Catch::Contains("'epochs' (1)"));
}
