#include "two_tower.hpp"

#include <chrono>
#include <cmath>
#include <numeric>

#include "adam.hpp"
#include "errors.hpp"
#include "export.hpp"
#include "funnel/model.hpp"
#include "sampled_softmax.hpp"

namespace funnel::train {

TwoTowerModel::TwoTowerModel(const Dataset& data, const TrainConfig& config)
    : rng_(config.seed),
      user_(data.users, feature_offset(data, data.users), config, "user", rng_),
      item_(data.items, feature_offset(data, data.items), config, "item", rng_) {}

std::vector<Parameter*> TwoTowerModel::parameters() {
  std::vector<Parameter*> out = user_.parameters();
  for (Parameter* p : item_.parameters()) out.push_back(p);
  return out;
}

double two_tower_step(TwoTowerModel& model, std::span<const uint32_t> users, std::span<const uint32_t> items,
                      std::span<const float> log_q, const TrainConfig& config, bool backward) {
  const float* u = model.user_tower().forward(users);
  const float* v = model.item_tower().forward(items);
  const size_t dim = model.user_tower().output_dim();
  SampledSoftmaxOptions options;
  options.temperature = config.temperature;
  options.logq_correction = config.logq_correction;
  options.mask_accidental_hits = config.mask_accidental_hits;
  if (!backward) return sampled_softmax(u, v, items, log_q, dim, options, nullptr, nullptr);
  std::vector<float> du(users.size() * dim), dv(items.size() * dim);
  const double loss = sampled_softmax(u, v, items, log_q, dim, options, du.data(), dv.data());
  model.user_tower().backward(du.data());
  model.item_tower().backward(dv.data());
  return loss;
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Snapshot {
  std::vector<std::vector<float>> values;
  void take(const std::vector<Parameter*>& parameters) {
    values.resize(parameters.size());
    for (size_t i = 0; i < parameters.size(); ++i) values[i] = parameters[i]->value;
  }
  void restore(const std::vector<Parameter*>& parameters) const {
    for (size_t i = 0; i < parameters.size(); ++i) parameters[i]->value = values[i];
  }
};

RetrievalMetrics evaluate_in_memory(const std::vector<uint8_t>& file, const Dataset& data, const Split& split, Holdout holdout,
                                    const std::vector<uint32_t>& ks) {
  std::unique_ptr<Model> model;
  if (Status status = Model::load_bytes(file.data(), file.size(), &model); !status)
    throw TrainingError("the exported model does not load: " + status.to_string());
  return evaluate_model(*model, data, split, holdout, ks);
}

}  // namespace

TrainResult train_two_tower(const Dataset& data, const Split& split, const TrainConfig& config, const TrainObserver& observer) {
  if (split.train.empty()) throw TrainingError("no training interactions");
  std::vector<uint32_t> ks = config.eval_k;
  if (std::find(ks.begin(), ks.end(), config.select_k) == ks.end()) ks.push_back(config.select_k);

  TwoTowerModel model(data, config);
  std::vector<Parameter*> parameters = model.parameters();
  Adam adam(parameters, {config.learning_rate, 0.9f, 0.999f, 1e-8f});

  // q(item) = training frequency (CBNS eq. 4's sampling probability under in-batch sampling).
  std::vector<float> item_log_q(data.items.size(), 0.0f);
  for (size_t i = 0; i < data.items.size(); ++i)
    if (split.item_train_count[i] > 0)
      item_log_q[i] = static_cast<float>(std::log(static_cast<double>(split.item_train_count[i]) / static_cast<double>(split.train.size())));

  Rng shuffle_rng(config.seed ^ 0x5DEECE66Dull);
  std::vector<uint32_t> order(split.train.size());
  std::iota(order.begin(), order.end(), 0u);
  std::vector<uint32_t> users, items;
  std::vector<float> log_q;

  TrainResult result;
  Snapshot best;
  double best_score = -1.0;
  double total_train_seconds = 0.0;
  size_t total_samples = 0;
  const Metadata no_metadata;
  const size_t steps = (order.size() + config.batch_size - 1) / config.batch_size;

  for (uint32_t epoch = 1; epoch <= config.epochs; ++epoch) {
    shuffle_rng.shuffle(order);
    const auto start = Clock::now();
    double loss_sum = 0.0;
    for (size_t step = 0; step < steps; ++step) {
      const size_t begin = step * config.batch_size;
      const size_t end = std::min(order.size(), begin + config.batch_size);
      if (end - begin < 2) continue;  // a softmax over one column has nothing to learn from
      users.clear();
      items.clear();
      log_q.clear();
      for (size_t i = begin; i < end; ++i) {
        const Interaction& x = split.train[order[i]];
        users.push_back(x.user);
        items.push_back(x.item);
        log_q.push_back(item_log_q[x.item]);
      }
      const double loss = two_tower_step(model, users, items, log_q, config, /*backward=*/true);
      if (!std::isfinite(loss))
        throw TrainingError("the loss became " + std::to_string(loss) + " at epoch " + std::to_string(epoch) + ", step " +
                            std::to_string(step + 1) + "; lower learning_rate or raise temperature");
      adam.step();
      loss_sum += loss;
      if (observer.on_progress && (step % 16 == 0 || step + 1 == steps))
        observer.on_progress(epoch, step + 1, steps, loss_sum / static_cast<double>(step + 1),
                             static_cast<double>(end) / std::max(seconds_since(start), 1e-9));
    }
    const double seconds = seconds_since(start);
    total_train_seconds += seconds;
    total_samples += order.size();

    EpochRecord record;
    record.epoch = epoch;
    record.loss = loss_sum / static_cast<double>(steps);
    record.samples_per_second = static_cast<double>(order.size()) / seconds;
    record.validation = evaluate_in_memory(export_two_tower(data, model, config, no_metadata), data, split, Holdout::kValidation, ks);
    result.history.push_back(record);
    if (observer.on_epoch) observer.on_epoch(record);
    const double score = record.validation.recall_at(config.select_k);
    if (score > best_score) {
      best_score = score;
      result.best_epoch = epoch;
      best.take(parameters);
    }
  }

  best.restore(parameters);
  result.train_seconds = total_train_seconds;
  result.samples_per_second = static_cast<double>(total_samples) / total_train_seconds;
  result.test = evaluate_in_memory(export_two_tower(data, model, config, no_metadata), data, split, Holdout::kTest, ks);
  result.popular_test = evaluate_most_popular(data, split, Holdout::kTest, ks);

  nlohmann::json history = nlohmann::json::array();
  for (const EpochRecord& r : result.history)
    history.push_back({{"epoch", r.epoch}, {"loss", r.loss}, {"samples_per_second", r.samples_per_second},
                       {"validation", r.validation.to_json()}});
  const Metadata metadata = {
      {"dataset", data.name},
      {"config", config_to_json(config).dump()},
      {"best_epoch", std::to_string(result.best_epoch)},
      {"test_metrics", result.test.to_json().dump()},
      {"most_popular_test_metrics", result.popular_test.to_json().dump()},
      {"history", history.dump()},
  };
  result.model_file = export_two_tower(data, model, config, metadata);
  return result;
}

}  // namespace funnel::train
