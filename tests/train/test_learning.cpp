// Learning tests that need no outside data: the built-in generator (train/data/synthetic.hpp) plants
// signals, and each model must find its own.
//  - Retrieval beats most-popular on the held-out split (the latent tastes that user features reveal).
//  - CBNS, balanced variant, trains without collapse: it beats most-popular and its item embeddings stay
//    apart (a collapsed tower maps every item to nearly one direction).
//  - A behaviour x candidate pairing (SyntheticOptions::pairing) that neither side tells alone: CAN's
//    co-action models it, and beats the DNN ranker's test AUC.
//  - GHM-C and focal losses train to a finite, better-than-chance AUC.
// Each margin was chosen from seeded runs with room for noise: FUNNEL_LEARNING_SEEDS=N runs every test over
// seeds 1..N (data and training) and prints its figures; the spreads quoted below are from
//   FUNNEL_LEARNING_SEEDS=5 build/release/tests/funnel_tests "[learning]" -s
// while the test command runs seed 1 alone.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "funnel/model.hpp"
#include "support.hpp"
#include "train/data/ctr_data.hpp"
#include "train/data/split.hpp"
#include "train/data/synthetic.hpp"
#include "train/ranking/ranker_training.hpp"
#include "train/retrieval/two_tower_training.hpp"

using namespace funnel::train;

namespace {

std::vector<uint64_t> learning_seeds() {
  const char* text = std::getenv("FUNNEL_LEARNING_SEEDS");
  const int count = text ? std::max(1, std::atoi(text)) : 1;
  std::vector<uint64_t> seeds;
  for (int s = 1; s <= count; ++s) seeds.push_back(static_cast<uint64_t>(s));
  return seeds;
}

Dataset generated(SyntheticOptions options) {
  funnel::test::TempDir dir;
  return load_dataset(write_synthetic_dataset(dir.path(), options));
}

SyntheticOptions retrieval_data(uint64_t seed) {
  SyntheticOptions options;
  options.users = 600;
  options.items = 300;
  options.categories = 10;
  options.mean_interactions = 20;
  options.seed = seed;
  return options;
}

TrainConfig retrieval_config(uint64_t seed) {
  TrainConfig config;
  config.embedding_dim = 16;
  config.hidden = {64};
  config.output_dim = 32;
  config.batch_size = 128;
  config.epochs = 8;
  config.learning_rate = 3e-3f;
  config.drift_sample = 0;
  config.threads = 1;
  config.seed = seed;
  return config;
}

// Mean cosine similarity over all pairs of the catalogue's embeddings: near 1 when the tower collapsed.
double mean_pairwise_cosine(const std::vector<uint8_t>& file) {
  std::unique_ptr<funnel::Model> model;
  REQUIRE(funnel::Model::load_bytes(file.data(), file.size(), &model).is_ok());
  const size_t n = model->catalogue_size(), d = model->embedding_dim();
  std::vector<double> unit(n * d);
  for (size_t i = 0; i < n; ++i) {
    const float* row = model->catalogue_embeddings() + i * d;
    double norm = 0;
    for (size_t k = 0; k < d; ++k) norm += double{row[k]} * row[k];
    norm = std::sqrt(std::max(norm, 1e-30));
    for (size_t k = 0; k < d; ++k) unit[i * d + k] = row[k] / norm;
  }
  std::vector<double> sum(d, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < d; ++k) sum[k] += unit[i * d + k];
  // sum_{i != j} u_i . u_j = |sum u|^2 - n
  double total = 0;
  for (double s : sum) total += s * s;
  return (total - static_cast<double>(n)) / (static_cast<double>(n) * static_cast<double>(n - 1));
}

RankerConfig ranker_config(const std::string& model, uint64_t seed) {
  RankerConfig config = funnel::test::learning_ranker_config();
  config.model = model;
  config.threads = 1;
  config.seed = seed;
  return config;
}

}  // namespace

TEST_CASE("Learning: two-tower retrieval beats most-popular on generated data", "[learning][retrieval]") {
  for (const uint64_t seed : learning_seeds()) {
    const Dataset data = generated(retrieval_data(seed));
    const TrainResult result = train_two_tower(data, leave_last_out(data), retrieval_config(seed));
    const double model = result.test.recall_at(50), popular = result.popular_test.recall_at(50);
    std::printf("learning: retrieval seed %llu: Recall@50 %.4f, most popular %.4f, coverage@50 %.3f, mean pairwise cosine %.3f\n",
                static_cast<unsigned long long>(seed), model, popular, result.test.coverage_at(50), mean_pairwise_cosine(result.model_file));
    INFO("seed " << seed << ": Recall@50 " << model << ", most popular " << popular);
    // Seeds 1-5: Recall@50 0.607-0.663 against most-popular's 0.420-0.483; the gap 0.160-0.222.
    CHECK(model > popular + 0.08);
  }
}

TEST_CASE("Learning: CBNS, balanced variant, trains without collapse", "[learning][retrieval][cbns]") {
  for (const uint64_t seed : learning_seeds()) {
    const Dataset data = generated(retrieval_data(seed));
    TrainConfig config = retrieval_config(seed);
    config.negatives = "cbns";
    config.memory_size = 512;
    config.cbns_warmup_steps = 50;
    struct Run {
      double recall, popular, coverage, cosine;
    };
    const auto run = [&](bool balanced) {
      config.cbns_balanced_item_gradient = balanced;
      const TrainResult result = train_two_tower(data, leave_last_out(data), config);
      REQUIRE(result.cbns_start_step >= 0);  // the bank was in use
      const Run r{result.test.recall_at(50), result.popular_test.recall_at(50), result.test.coverage_at(50),
                  mean_pairwise_cosine(result.model_file)};
      std::printf("learning: cbns (%s) seed %llu: Recall@50 %.4f, most popular %.4f, coverage@50 %.3f, mean pairwise cosine %.3f\n",
                  balanced ? "balanced" : "paper's form", static_cast<unsigned long long>(seed), r.recall, r.popular, r.coverage, r.cosine);
      return r;
    };
    // Collapse, measured: the items' embeddings crowd into one direction (mean pairwise cosine near 1) and
    // the users' top 50 lists into a few items (coverage), and most-popular wins. Seeds 1-5, balanced:
    // Recall@50 0.602-0.662 (most-popular 0.420-0.483, the gap 0.155-0.217), coverage@50 0.973-0.990,
    // cosine 0.778-0.827 (in-batch alone: 0.771-0.798). The paper's form on the same data and steps:
    // Recall@50 0.257-0.363, below most-popular, coverage@50 0.533-0.653, cosine 0.962-0.980.
    const Run balanced = run(true);
    INFO("seed " << seed << ": Recall@50 " << balanced.recall << ", most popular " << balanced.popular << ", coverage@50 "
                 << balanced.coverage << ", mean pairwise cosine " << balanced.cosine);
    CHECK(balanced.recall > balanced.popular + 0.08);
    CHECK(balanced.coverage > 0.85);
    CHECK(balanced.cosine < 0.9);
    // The measure sees a collapse where there is one: the paper's form collapses here.
    const Run paper = run(false);
    INFO("the paper's form: Recall@50 " << paper.recall << ", coverage@50 " << paper.coverage << ", mean pairwise cosine " << paper.cosine);
    CHECK((paper.cosine > 0.9 || paper.coverage < 0.85));
  }
}

TEST_CASE("Learning: CAN beats the DNN ranker on a behaviour x candidate pairing", "[learning][ranker][coaction]") {
  for (const uint64_t seed : learning_seeds()) {
    SyntheticOptions options = retrieval_data(seed);
    // 40 categories: a 40 x 40 pairing, more than the DNN's pooled history and candidate learn to cross in
    // three epochs; 10 items per category.
    options.categories = 40;
    options.items = 400;
    options.pairing = 0.8;
    const Dataset data = generated(options);
    const CtrDataset ctr{data, build_ctr_instances(data, ranker_config("can", seed).ctr_options())};
    const double can = train_ranker(ctr, ranker_config("can", seed)).test.auc;
    const double dnn = train_ranker(ctr, ranker_config("dnn", seed)).test.auc;
    // The same seed without the pairing: what CAN's lead owes to the co-action it is built for.
    options.pairing = 0;
    const Dataset unpaired_data = generated(options);
    const CtrDataset unpaired{unpaired_data, build_ctr_instances(unpaired_data, ranker_config("can", seed).ctr_options())};
    const double can_unpaired = train_ranker(unpaired, ranker_config("can", seed)).test.auc;
    const double dnn_unpaired = train_ranker(unpaired, ranker_config("dnn", seed)).test.auc;
    std::printf("learning: pairing seed %llu: test AUC CAN %.4f, DNN %.4f; without the pairing CAN %.4f, DNN %.4f\n",
                static_cast<unsigned long long>(seed), can, dnn, can_unpaired, dnn_unpaired);
    INFO("seed " << seed << ": test AUC CAN " << can << ", DNN " << dnn << "; without the pairing CAN " << can_unpaired << ", DNN "
                 << dnn_unpaired);
    // Seeds 1-5: CAN 0.816-0.838, DNN 0.732-0.790, CAN's lead 0.048-0.083. The same data without the
    // pairing (pairing = 0): CAN's lead 0.004-0.024, below this margin on every seed.
    CHECK(can > dnn + 0.025);
    // The lead with the pairing exceeds the lead without it on the same seed: seeds 1-5 by 0.034-0.063
    // (FUNNEL_LEARNING_SEEDS=5), and by 0.024 even pairing the smallest lead with (0.048) against the
    // largest without (0.024).
    CHECK(can - dnn > can_unpaired - dnn_unpaired + 0.02);
  }
}

TEST_CASE("Learning: GHM-C and focal losses train to a finite, better-than-chance AUC", "[learning][ranker][ctr_loss]") {
  for (const uint64_t seed : learning_seeds()) {
    const Dataset data = generated(retrieval_data(seed));
    for (const std::string loss : {"ghm", "focal"}) {
      RankerConfig config = ranker_config("can", seed);
      config.loss = loss;
      const CtrDataset ctr{data, build_ctr_instances(data, config.ctr_options())};
      const RankerResult result = train_ranker(ctr, config);
      std::printf("learning: %s seed %llu: test AUC %.4f, final loss %.4f\n", loss.c_str(), static_cast<unsigned long long>(seed),
                  result.test.auc, result.history.back().loss);
      INFO(loss << ", seed " << seed << ": test AUC " << result.test.auc);
      CHECK(std::isfinite(result.history.back().loss));
      CHECK(std::isfinite(result.test.logloss));
      // Seeds 1-5 on 1,200 test instances (chance 0.5, standard error about 0.016): GHM-C 0.766-0.825,
      // focal 0.767-0.837.
      CHECK(result.test.auc > 0.65);
    }
  }
}
