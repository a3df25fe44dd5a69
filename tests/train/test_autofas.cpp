// AutoFAS: finite-difference checks of the Mixop supernet, of E[lat'] and of the feature masks' gradients
// through the teacher; the latency table; distillation's gradient; and, on a constructed dataset where some
// fields carry the signal and others are expensive noise, the masks keep the signal and drop the noise.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "train/pre_ranking/autofas.hpp"
#include "train/pre_ranking/autofas_training.hpp"
#include "train/core/checkpoint.hpp"
#include "train/data/ctr_data.hpp"
#include "train/ranking/ctr_losses.hpp"
#include "train/pre_ranking/distillation.hpp"
#include "train/core/errors.hpp"
#include "train/export/export.hpp"
#include "funnel/model.hpp"
#include "gradient_check.hpp"
#include "train/ranking/ranker_training.hpp"
#include "train/ranking/ranker_model.hpp"
#include "support.hpp"

using namespace funnel::train;
using funnel::test::expect_close;
using funnel::test::numeric_gradient;
using funnel::test::random_values;

namespace {

// T[a x b] = a * b / 100 + 1 (+ 0.5 when b > 1, the PReLU): bilinear, so interpolation is exact.
LatencyTable linear_table() {
  nlohmann::json t = {{"target", "test"}, {"candidates", 1000}, {"inputs", {4, 8, 16, 32}}, {"outputs", {1, 4, 8, 16, 32}}};
  std::vector<std::vector<double>> us;
  for (double a : {4, 8, 16, 32}) {
    std::vector<double> row;
    for (double b : {1, 4, 8, 16, 32}) row.push_back(a * b / 100 + 1 + (b > 1 ? 0.5 : 0));
    us.push_back(row);
  }
  t["microseconds"] = us;
  return LatencyTable::from_json(t, "test table");
}

}  // namespace

TEST_CASE("AutoFAS: the latency table interpolates between measured widths and refuses bad tables", "[autofas]") {
  const LatencyTable table = linear_table();
  CHECK(table.at(8, 16) == Approx(8 * 16 / 100.0 + 1.5));
  CHECK(table.at(12, 16) == Approx(12 * 16 / 100.0 + 1.5));  // between inputs
  CHECK(table.at(64, 32) == Approx(64 * 32 / 100.0 + 1.5));  // past the largest input: extrapolated
  CHECK(table.at(8, 1) == Approx(8 / 100.0 + 1));
  CHECK(table.candidates() == 1000);
  CHECK(table.target() == "test");
  const nlohmann::json good = {{"candidates", 10}, {"inputs", {4}}, {"outputs", {1}}, {"microseconds", {{2.0}}}};
  CHECK(LatencyTable::from_json(good, "x").at(100, 100) == 2.0);
  nlohmann::json bad = good;
  bad["inputs"] = {8, 4};
  CHECK_THROWS_WITH(LatencyTable::from_json(bad, "lat.json"), Catch::Contains("lat.json") && Catch::Contains("increasing"));
  bad = good;
  bad["microseconds"] = {{1.0, 2.0}};
  CHECK_THROWS_WITH(LatencyTable::from_json(bad, "lat.json"), Catch::Contains("one value per output width"));
  bad = good;
  bad.erase("candidates");
  CHECK_THROWS_WITH(LatencyTable::from_json(bad, "lat.json"), Catch::Contains("candidates"));
}

TEST_CASE("AutoFAS: E[lat'] is the chosen chain's latency for certain choices, and its gradient is exact", "[autofas][gradient]") {
  const LatencyTable table = linear_table();
  const Operators operators = {0, 8, 16};
  // Certain choices: Mixop 1 picks 16, Mixop 2 the identity, Mixop 3 picks 8: 12 -> 16 -> 16 -> 8 -> 1.
  const std::vector<std::vector<double>> certain = {{0, 0, 1}, {1, 0, 0}, {0, 1, 0}};
  CHECK(expected_architecture_latency(certain, operators, 12, table) == Approx(table.at(12, 16) + table.at(16, 8) + table.at(8, 1)));
  // Every Mixop the identity: only the output layer on the input.
  CHECK(expected_architecture_latency({{1, 0, 0}, {1, 0, 0}}, operators, 12, table) == Approx(table.at(12, 1)));

  funnel::train::Rng rng(3);
  std::vector<std::vector<double>> p(3, std::vector<double>(3));
  for (auto& row : p) {
    double sum = 0;
    for (double& v : row) sum += v = 0.1 + rng.uniform();
    for (double& v : row) v /= sum;
  }
  std::vector<std::vector<double>> gradient;
  expected_architecture_latency(p, operators, 12, table, &gradient);
  // The expectation is a polynomial in the p's: each entry is checked as an independent variable.
  for (size_t l = 0; l < p.size(); ++l)
    for (size_t j = 0; j < operators.size(); ++j) {
      const double saved = p[l][j], h = 1e-6;
      p[l][j] = saved + h;
      const double up = expected_architecture_latency(p, operators, 12, table);
      p[l][j] = saved - h;
      const double down = expected_architecture_latency(p, operators, 12, table);
      p[l][j] = saved;
      INFO("p[" << l << "][" << j << "]");
      CHECK(gradient[l][j] == Approx((up - down) / (2 * h)).epsilon(1e-6));
    }
}

TEST_CASE("AutoFAS: gradients of the Mixop supernet's weights and architecture parameters", "[autofas][gradient]") {
  funnel::train::Rng rng(11);
  Supernet net(6, 2, {0, 4, 8}, rng);
  for (float& a : net.alpha().value) a = static_cast<float>(0.5 * rng.normal());
  const size_t batch = 5;
  const std::vector<float> x = random_values(batch * 6, rng), weights = random_values(batch, rng);
  std::vector<float> logits(batch);
  const auto loss = [&] {
    net.forward(x.data(), batch, logits.data());
    double sum = 0;
    for (size_t b = 0; b < batch; ++b) sum += static_cast<double>(logits[b]) * weights[b];
    return sum;
  };
  loss();
  net.backward(weights);
  std::vector<Parameter*> parameters = net.weights();
  parameters.push_back(&net.alpha());
  size_t checked = 0, skipped = 0;
  for (Parameter* p : parameters) {
    INFO(p->name);
    for (size_t k = 0; k < p->size(); k += std::max<size_t>(1, p->size() / 10)) {
      if (funnel::test::check_away_from_kinks(p->value[k], p->grad[k], loss, p->name + "[" + std::to_string(k) + "]")) ++checked;
      else ++skipped;
    }
  }
  CHECK(checked > 40);
  CHECK(skipped * 10 <= checked);
  // The latency term reaches alpha through the softmax.
  for (float& g : net.alpha().grad) g = 0;
  const LatencyTable table = linear_table();
  std::vector<std::vector<double>> dp;
  expected_architecture_latency(net.probabilities(), net.operators(), 6, table, &dp);
  net.add_probability_gradient(dp);
  for (size_t k = 0; k < net.alpha().size(); ++k) {
    const auto latency = [&] { return expected_architecture_latency(net.probabilities(), net.operators(), 6, table); };
    expect_close(net.alpha().grad[k], numeric_gradient(net.alpha().value[k], latency, 1e-3f), "d E[lat'] / d alpha");
  }
}

TEST_CASE("AutoFAS: feature-mask gradients through the teacher (embeddings and co-action outputs)", "[autofas][gradient]") {
  const auto& data = funnel::test::small_dataset();
  const CtrInstances& instances = funnel::test::small_ctr().instances;
  RankerConfig config = funnel::test::small_ranker_config();
  config.user_features = {"age"};
  config.coaction = {"item_id:item_id", "category:region"};  // a behaviour feed and a user feed of its own
  RankerModel model(data, config);
  funnel::train::Rng rng(7);
  model.init(rng);
  const std::vector<std::string> expected = {"user:age", "candidate:item_id", "candidate:category", "behaviours:item_id",
                                             "behaviours:category", "user:region"};
  REQUIRE(model.field_names() == expected);
  // Continuous masks, so that finite differences see the same function the straight-through estimate
  // differentiates.
  std::vector<float> masks = {0.9f, 0.6f, 0.8f, 0.4f, 0.7f, 0.5f};
  std::vector<uint32_t> batch;
  for (uint32_t i = 0; i < 16; ++i) batch.push_back(i);
  const std::vector<float> weights = random_values(batch.size(), rng);
  std::vector<float> logits(batch.size());
  const auto loss = [&] {
    model.set_field_masks(masks);
    model.forward(instances, instances.train, batch, logits.data());
    double sum = 0;
    for (size_t b = 0; b < batch.size(); ++b) sum += static_cast<double>(logits[b]) * weights[b];
    return sum;
  };
  loss();
  model.backward(weights, false);
  const std::vector<double> analytic = model.field_mask_gradients();
  for (size_t f = 0; f < masks.size(); ++f) {
    const double numeric = numeric_gradient(masks[f], loss, 1e-3f);
    expect_close(analytic[f], numeric, model.field_names()[f]);
  }
  // A mask of 1 everywhere is the unmasked model.
  std::vector<float> plain(batch.size());
  model.set_field_masks({});
  model.forward(instances, instances.train, batch, plain.data());
  masks.assign(masks.size(), 1.0f);
  loss();
  for (size_t b = 0; b < batch.size(); ++b) CHECK(logits[b] == plain[b]);
  CHECK_THROWS_AS(model.set_field_masks({1.0f}), TrainingError);
}

TEST_CASE("Distillation: the mixed loss and its gradient", "[autofas][gradient][ctr_loss]") {
  std::vector<float> logits = {0.3f, -1.2f, 2.0f, 0.0f};
  const std::vector<float> labels = {1, 0, 1, 0}, teacher = {0.7f, 0.2f, 0.95f, 0.4f};
  std::vector<float> dlogits(4);
  const auto loss = [&] {
    std::vector<float> d(4);
    const float base = bce_loss(logits, labels, d);
    return static_cast<double>(distill(logits, teacher, 0.3f, base, d));
  };
  const float base = bce_loss(logits, labels, dlogits);
  const float mixed = distill(logits, teacher, 0.3f, base, dlogits);
  double gap = 0;
  for (size_t i = 0; i < 4; ++i) gap += std::pow(1 / (1 + std::exp(-static_cast<double>(logits[i]))) - teacher[i], 2);
  CHECK(mixed == Approx(0.7 * base + 0.3 * gap / 4));
  for (size_t i = 0; i < 4; ++i) expect_close(dlogits[i], numeric_gradient(logits[i], loss, 1e-3f), "d / d logit");
  CHECK_THROWS_AS(distill(logits, std::vector<float>{1.0f}, 0.5f, base, dlogits), TrainingError);
}

TEST_CASE("AutoFAS: config from JSON, teacher and search fields side by side, and errors that name the field", "[autofas][config]") {
  const AutoFasConfig c = autofas_config_from_json({{"model", "can"}, {"lambda2", 0.01}, {"operators", {0, 16}}, {"field_costs", {{"candidate:item_id", 3}}}},
                                                   "autofas.json");
  CHECK(c.teacher.model == "can");
  CHECK(c.lambda2 == Approx(0.01));
  CHECK(c.operators == Operators{0, 16});
  CHECK(c.field_costs.at("candidate:item_id") == 3.0f);
  CHECK(autofas_config_from_json(autofas_config_to_json(c), "round trip").lambda2 == c.lambda2);
  CHECK_THROWS_WITH(autofas_config_from_json({{"lambda9", 1}}, "autofas.json"), Catch::Contains("autofas.json") && Catch::Contains("lambda9"));
  CHECK_THROWS_WITH(autofas_config_from_json({{"operators", {0, 0, 8}}}, "a.json"), Catch::Contains("identity"));
  CHECK_THROWS_WITH(autofas_config_from_json({{"lambda1", 2}}, "a.json"), Catch::Contains("lambda1"));
}

namespace {

// Items carry `signal` (4 values; every user keeps to one) and `noise` (drawn independently of everything).
// A user's positives share their signal value and its negatives are uniform, so candidate:signal and
// behaviours:signal carry the label, while candidate:noise and behaviours:noise carry nothing.
std::string write_signal_and_noise(const funnel::test::TempDir& dir) {
  funnel::train::Rng rng(21);
  const int items = 200, users = 300;
  std::ofstream item_file(dir.file("items.csv"));
  item_file << "item_id,signal,noise\n";
  for (int i = 0; i < items; ++i) item_file << "i" << i << ",s" << i % 4 << ",n" << rng.below(40) << "\n";
  std::ofstream interactions(dir.file("interactions.csv"));
  interactions << "user_id,item_id,timestamp\n";
  for (int u = 0; u < users; ++u) {
    const int signal = u % 4;
    for (int t = 0; t < 12; ++t) interactions << "u" << u << ",i" << 4 * rng.below(items / 4) + signal << "," << t << "\n";
  }
  const nlohmann::json description = {
      {"name", "signal-and-noise"},
      {"interactions", {{"path", "interactions.csv"}, {"header", true}, {"user", 0}, {"item", 1}, {"timestamp", 2}}},
      {"items",
       {{"path", "items.csv"},
        {"header", true},
        {"key", 0},
        {"features", {{{"name", "signal"}, {"column", 1}}, {{"name", "noise"}, {"column", 2}}}}}}};
  return dir.write("dataset.json", description.dump());
}

}  // namespace

TEST_CASE("AutoFAS: the masks keep the fields that carry the signal and drop expensive noise", "[autofas][training]") {
  funnel::test::TempDir dir;
  AutoFasConfig config;
  config.teacher.model = "dnn";
  config.teacher.max_history = 8;
  config.teacher.embedding_dim = 8;
  config.teacher.hidden = {16};
  config.teacher.epochs = 3;
  config.teacher.batch_size = 64;
  config.teacher.learning_rate = 0.01f;
  config.teacher.threads = 1;
  config.search_epochs = 4;
  config.operators = {0, 8, 16};
  config.mixops = 2;
  config.field_costs = {{"candidate:noise", 400}, {"behaviours:noise", 400}, {"candidate:signal", 1}, {"behaviours:signal", 1}};
  config.lambda = 1e-3f;
  const CtrDataset ctr = load_ctr_dataset(write_signal_and_noise(dir), "", config.teacher.ctr_options());
  std::unique_ptr<RankerModel> teacher;
  const RankerResult trained = train_ranker(ctr, config.teacher, {}, {}, &teacher);
  INFO("teacher test AUC " << trained.test.auc);
  REQUIRE(trained.test.auc > 0.75);  // the signal is learnable
  REQUIRE(teacher);

  const LatencyTable table = linear_table();
  const AutoFasSearch search = autofas_search(*teacher, ctr, config, table);
  const auto kept = [&](const std::string& field) {
    for (size_t f = 0; f < search.fields.size(); ++f)
      if (search.fields[f] == field) {
        INFO(field << ": theta " << search.theta[f]);
        return static_cast<bool>(search.kept[f]);
      }
    FAIL("no field " << field);
    return false;
  };
  CHECK(kept("candidate:signal"));
  CHECK(kept("behaviours:signal"));
  CHECK_FALSE(kept("candidate:noise"));
  CHECK_FALSE(kept("behaviours:noise"));
  CHECK(search.history.size() == config.search_epochs);
  // The derived student reads exactly the kept fields, through the chosen layers.
  const RankerConfig student = student_config(config, search);
  CHECK(student.model == "dnn");
  CHECK(student.item_features == std::vector<std::string>{"signal"});
  CHECK(student.behaviour_features == std::vector<std::string>{"signal"});
  CHECK(student.hidden == search.layers);
  CHECK(student.distillation == config.lambda1);
  CHECK(search.feature_latency == Approx(2.0));
  CHECK(search.architecture_latency > 0);
}

TEST_CASE("AutoFAS: the exported student's SDK scores equal the trainer's, from raw features and item keys", "[autofas][parity]") {
  const auto& data = funnel::test::small_dataset();
  const CtrDataset& ctr = funnel::test::small_ctr();
  const CtrInstances& instances = ctr.instances;
  RankerConfig teacher_config = funnel::test::small_ranker_config();
  teacher_config.hidden = {6};
  teacher_config.user_features = {"age", "region"};
  RankerModel teacher(data, teacher_config);
  funnel::train::Rng rng(3);
  teacher.init(rng);
  // A student as a search derives it: a subset of the user features, the candidate's category only, the
  // behaviours' item ids only (a column the candidate does not read), and distillation.
  RankerConfig student = teacher_config;
  student.model = "dnn";
  student.user_features = {"region"};
  student.item_features = {"category"};
  student.behaviour_features = {"item_id"};
  student.hidden = {8, 4};
  student.epochs = 1;
  student.distillation = 0.5f;
  student.threads = 1;
  const std::vector<float> soft(instances.train.size(), 0.3f);
  std::unique_ptr<RankerModel> trained;
  train_ranker(ctr, student, {}, distillation_term(soft, instances.train.size(), student.distillation), &trained);
  REQUIRE(trained);
  const std::vector<uint8_t> bytes = export_funnel(data, nullptr, &teacher, trained.get(), {});
  std::unique_ptr<funnel::Model> model;
  REQUIRE(funnel::Model::load_bytes(bytes.data(), bytes.size(), &model).is_ok());
  REQUIRE(model->has_pre_ranking());

  std::vector<uint32_t> batch;
  for (uint32_t i = 0; i < 40; ++i) batch.push_back(i);
  std::vector<float> logits(batch.size());
  trained->forward(instances, instances.train, batch, logits.data());
  for (size_t b = 0; b < batch.size(); ++b) {
    const uint32_t i = batch[b];
    std::vector<std::string> behaviours;
    for (uint32_t k = instances.history_offsets[instances.train.history[i]]; k < instances.history_offsets[instances.train.history[i] + 1]; ++k)
      behaviours.push_back(data.items.keys[instances.history_items[k]]);
    const std::vector<std::string> candidate = {data.items.keys[instances.train.target[i]]};
    std::vector<float> p;
    REQUIRE(model->prerank(data.users.raw[instances.train.user[i]], behaviours, candidate, &p).is_ok());
    INFO("instance " << i);
    CHECK(p[0] == Approx(1 / (1 + std::exp(-static_cast<double>(logits[b])))).margin(1e-5));
  }
}

namespace {

struct SimulatedCrash {};

AutoFasConfig resumable_config() {
  AutoFasConfig config;
  config.teacher.model = "can";
  config.teacher.max_history = 5;
  config.teacher.embedding_dim = 4;
  config.teacher.hidden = {8};
  config.teacher.coaction_feed_dim = 4;
  config.teacher.coaction_layers = {3, 2};
  config.teacher.epochs = 2;
  config.teacher.batch_size = 64;
  config.teacher.threads = 1;
  config.search_epochs = 2;
  config.operators = {0, 8, 16};
  config.mixops = 2;
  config.student_epochs = 2;
  return config;
}

}  // namespace

TEST_CASE("AutoFAS: a run resumed from its checkpoint, in the teacher, the search or the student, equals the uninterrupted run",
          "[autofas][checkpoint]") {
  const CtrDataset ctr{funnel::test::small_dataset(), build_ctr_instances(funnel::test::small_dataset(), CtrOptions{5, 1, 3})};
  const AutoFasConfig config = resumable_config();
  const LatencyTable table = linear_table();
  const std::vector<uint8_t> uninterrupted = train_autofas(ctr, config, table).model_file;

  struct Crash {
    const char* where;
    const char* stage;  // the stage the checkpoint is left at
  };
  for (const Crash crash : {Crash{"teacher epoch 1", "teacher"}, Crash{"search", "search"}, Crash{"student epoch 1", "student"}}) {
    INFO("crash in " << crash.where);
    funnel::test::TempDir dir;
    AutoFasObservers observers;
    const std::string where = crash.where;
    observers.training = [where](const std::string& what, uint32_t) {
      RankerObserver observer;
      observer.on_epoch = [where, what](const RankerEpoch& e) {
        if (where == what + " epoch " + std::to_string(e.epoch)) throw SimulatedCrash{};
      };
      return observer;
    };
    if (where == "search") observers.search.on_progress = [](uint32_t, size_t, size_t, double, double, double, double) { throw SimulatedCrash{}; };
    AutoFasCheckpoints crashing;
    crashing.checkpoint = dir.file("autofas.ckpt");
    CHECK_THROWS_AS(train_autofas(ctr, config, table, observers, {}, crashing), SimulatedCrash);
    CHECK(load_checkpoint(crashing.checkpoint).header.at("identity").at("autofas.stage") == crash.stage);

    AutoFasCheckpoints resuming;
    resuming.resume = crashing.checkpoint;
    resuming.checkpoint = crashing.checkpoint;
    CHECK(train_autofas(ctr, config, table, {}, {}, resuming).model_file == uninterrupted);
  }
}

TEST_CASE("AutoFAS: a checkpoint of another run is refused, naming the field", "[autofas][checkpoint]") {
  const CtrDataset ctr{funnel::test::small_dataset(), build_ctr_instances(funnel::test::small_dataset(), CtrOptions{5, 1, 3})};
  AutoFasConfig config = resumable_config();
  config.teacher.epochs = 1;
  config.student_epochs = 1;
  config.search_epochs = 1;
  const LatencyTable table = linear_table();
  funnel::test::TempDir dir;
  AutoFasCheckpoints first;
  first.checkpoint = dir.file("autofas.ckpt");
  train_autofas(ctr, config, table, {}, {}, first);  // leaves the student's last epoch

  AutoFasCheckpoints resuming;
  resuming.resume = first.checkpoint;
  AutoFasConfig other = config;
  other.lambda1 = 0.25f;
  CHECK_THROWS_WITH(train_autofas(ctr, other, table, {}, {}, resuming),
                    Catch::Contains("autofas.ckpt") && Catch::Contains("another run") && Catch::Contains("'autofas.lambda1'"));
  other = config;
  other.teacher.hidden = {12};
  CHECK_THROWS_WITH(train_autofas(ctr, other, table, {}, {}, resuming), Catch::Contains("'teacher.hidden'"));
  // Past the teacher's training, its epochs made the teacher the checkpoint holds: another count is refused.
  other = config;
  other.teacher.epochs = 2;
  CHECK_THROWS_WITH(train_autofas(ctr, other, table, {}, {}, resuming), Catch::Contains("'teacher.epochs'"));
  // A ranking run's checkpoint is not an AutoFAS run's.
  RankerCheckpoints ranker;
  ranker.checkpoint = dir.file("ranker.ckpt");
  train_ranker(ctr, config.teacher, {}, {}, nullptr, ranker);
  resuming.resume = ranker.checkpoint;
  CHECK_THROWS_WITH(train_autofas(ctr, config, table, {}, {}, resuming),
                    Catch::Contains("ranker.ckpt") && Catch::Contains("'autofas.stage' is missing"));
}
