#include "train/ranking/ranker_training.hpp"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <unordered_map>

#include "train/core/adam.hpp"
#include "train/export/export.hpp"
#include "train/ranking/ctr_losses.hpp"
#include "train/core/errors.hpp"
#include "train/ranking/ranker_model.hpp"
#include "train/core/subnormals.hpp"

namespace funnel::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

nlohmann::json metrics_json(const CtrMetrics& m) {
  return {{"auc", m.auc}, {"gauc", m.gauc}, {"logloss", m.logloss}, {"instances", m.instances}};
}

}  // namespace

CtrMetrics evaluate_ranker(const Model& model, const Dataset& data, const CtrInstances& instances, const CtrSplit& split) {
  const RankerView& view = model.ranker();
  const size_t columns = view.item_columns;
  // The model's item table holds the dataset's items in table order (export_ranker writes it so).
  std::vector<uint32_t> item_ids;
  {
    std::vector<std::string> keys(data.items.keys.begin(), data.items.keys.end());
    if (Status s = model.encode_items(keys, true, &item_ids); !s) throw TrainingError("evaluation: " + s.to_string());
  }
  std::vector<size_t> group_begin;
  for (size_t i = 0; i < split.size(); ++i)
    if (i == 0 || split.history[i] != split.history[i - 1] || split.user[i] != split.user[i - 1]) group_begin.push_back(i);
  group_begin.push_back(split.size());

  std::vector<float> logits(split.size());
  const size_t groups = group_begin.size() - 1;
#pragma omp parallel
  {
    RankScratch scratch;
    EncodedFeatures user;
    std::vector<uint32_t> behaviours, candidates;
#pragma omp for schedule(dynamic, 16)
    for (size_t g = 0; g < groups; ++g) {
      const size_t begin = group_begin[g], end = group_begin[g + 1];
      encode_row(data, data.users, split.user[begin], &user);
      const uint32_t h = split.history[begin];
      behaviours.clear();
      for (uint32_t k = instances.history_offsets[h]; k < instances.history_offsets[h + 1]; ++k) {
        const uint32_t* row = item_ids.data() + size_t{instances.history_items[k]} * columns;
        behaviours.insert(behaviours.end(), row, row + columns);
      }
      candidates.clear();
      for (size_t i = begin; i < end; ++i) {
        const uint32_t* row = item_ids.data() + size_t{split.target[i]} * columns;
        candidates.insert(candidates.end(), row, row + columns);
      }
      const RankInput input{&user, behaviours.data(), behaviours.size() / columns, candidates.data(), end - begin};
      rank_logits(view, input, &scratch, logits.data() + begin);
    }
  }
  return ctr_metrics(split.user, logits, split.label);
}

RankerResult train_ranker(const CtrDataset& ctr, const RankerConfig& config, const RankerObserver& observer,
                          const LossTerm& extra_loss, std::unique_ptr<RankerModel>* trained) {
  const Dataset& data = ctr.data;
  const CtrInstances& instances = ctr.instances;
  const CtrSplit& train = instances.train;
  if (train.size() == 0) throw TrainingError("ranking: the data gives no training instances");
  omp_set_num_threads(config.threads > 0 ? static_cast<int>(config.threads) : omp_get_num_procs());
  flush_subnormals_to_zero();

  auto owned_model = std::make_unique<RankerModel>(data, config);
  RankerModel& model = *owned_model;
  // Rng(seed + 1) is Rng(seed) one draw later; mixing the seed first gives each seed its own stream.
  Rng rng(Rng(config.seed).next());
  model.init(rng);
  std::vector<Parameter*> parameters = model.parameters();
  AdamOptions adam_options;
  adam_options.learning_rate = config.learning_rate;
  adam_options.lazy = config.optimizer == "lazy_adam";
  // Dense Adam's values, computed late: a step costs what its batch touches, not the tables' size.
  adam_options.deferred = !adam_options.lazy;
  Adam adam(parameters, adam_options);
  // The rows a batch reads, once each, for deferred Adam to bring up to date before the forward pass.
  std::vector<std::vector<uint8_t>> marked(parameters.size());
  std::unordered_map<const Parameter*, uint32_t> index_of;
  for (uint32_t i = 0; i < parameters.size(); ++i) {
    index_of[parameters[i]] = i;
    if (parameters[i]->sparse) marked[i].assign(parameters[i]->size() / parameters[i]->row_size, 0);
  }
  std::vector<std::pair<uint32_t, uint32_t>> rows_read;
  const auto catch_up = [&](std::span<const uint32_t> batch) {
    if (!adam_options.deferred) return;
    rows_read.clear();
    model.for_each_row_read(instances, train, batch, [&](const Parameter* p, uint32_t row) {
      const uint32_t i = index_of.at(p);
      if (!marked[i][row]) {
        marked[i][row] = 1;
        rows_read.emplace_back(i, row);
      }
    });
    for (const auto& [i, row] : rows_read) marked[i][row] = 0;
    adam.catch_up_rows(rows_read);
  };
  GhmC ghm(config.ghm_bins, config.ghm_momentum);
  const FocalOptions focal{config.focal_gamma, config.focal_alpha};

  RankerResult result;
  result.parameters = model.parameter_count();
  const nlohmann::json config_json = ranker_config_to_json(config);
  const auto export_now = [&](const std::vector<RankerEpoch>& history) {
    nlohmann::json epochs = nlohmann::json::array();
    for (const RankerEpoch& e : history)
      epochs.push_back({{"epoch", e.epoch}, {"loss", e.loss}, {"validation", metrics_json(e.validation)}, {"test", metrics_json(e.test)}});
    const Metadata metadata = {{"dataset", data.name}, {"stage", "ranking"}, {"ranking_config", config_json.dump()},
                               {"ranking_epochs", epochs.dump()}};
    return export_ranker(data, model, metadata);
  };
  const auto evaluate = [&](const std::vector<uint8_t>& file, const CtrSplit& split) {
    if (split.size() == 0) return CtrMetrics{};
    std::unique_ptr<Model> loaded;
    if (Status s = Model::load_bytes(file.data(), file.size(), &loaded); !s) throw TrainingError("the exported model does not load: " + s.to_string());
    return evaluate_ranker(*loaded, data, instances, split);
  };

  const size_t n = train.size();
  const size_t steps = (n + config.batch_size - 1) / config.batch_size;
  std::vector<uint32_t> order(n);
  std::vector<float> logits(config.batch_size), dlogits(config.batch_size);
  std::vector<std::vector<float>> best_values;
  double best_auc = -1.0;
  for (uint32_t epoch = 1; epoch <= config.epochs; ++epoch) {
    const auto start = Clock::now();
    std::iota(order.begin(), order.end(), 0u);
    rng.shuffle(order);
    double loss_sum = 0.0;
    for (size_t step = 0; step < steps; ++step) {
      const size_t begin = step * config.batch_size, end = std::min(n, begin + config.batch_size);
      const std::span<const uint32_t> batch(order.data() + begin, end - begin);
      const size_t b = batch.size();
      catch_up(batch);
      model.forward(instances, train, batch, logits.data());
      std::vector<float> labels(b);
      for (size_t k = 0; k < b; ++k) labels[k] = train.label[batch[k]];
      const std::span<const float> batch_logits(logits.data(), b);
      const std::span<float> batch_dlogits(dlogits.data(), b);
      float loss = 0.0f;
      if (config.loss == "focal") loss = focal_loss(batch_logits, labels, focal, batch_dlogits);
      else if (config.loss == "ghm") loss = ghm.loss(batch_logits, labels, batch_dlogits);
      else loss = bce_loss(batch_logits, labels, batch_dlogits);
      if (extra_loss) loss = extra_loss(batch, batch_logits, loss, batch_dlogits);
      if (!std::isfinite(loss))
        throw TrainingError("the loss became " + std::to_string(loss) + " at epoch " + std::to_string(epoch) + ", step " +
                            std::to_string(step + 1) + " (learning rate " + std::to_string(config.learning_rate) + ")");
      model.backward(batch_dlogits);
      adam.step();
      loss_sum += loss;
      if (observer.on_progress && ((step + 1) % 50 == 0 || step + 1 == steps))
        observer.on_progress(epoch, step + 1, steps, loss_sum / static_cast<double>(step + 1),
                             static_cast<double>(end) / seconds_since(start));
    }
    adam.sync_all();  // the rest of dense Adam's work for this epoch, timed with it
    RankerEpoch record;
    record.epoch = epoch;
    record.loss = loss_sum / static_cast<double>(steps);
    record.train_seconds = seconds_since(start);
    record.samples_per_second = static_cast<double>(n) / record.train_seconds;
    result.train_seconds += record.train_seconds;
    result.train_samples += n;
    const std::vector<uint8_t> file = export_now(result.history);
    record.validation = evaluate(file, instances.validation);
    record.test = evaluate(file, instances.test);
    result.history.push_back(record);
    if (observer.on_epoch) observer.on_epoch(record);
    const bool has_validation = instances.validation.size() > 0;
    if (!has_validation || record.validation.auc > best_auc) {
      best_auc = record.validation.auc;
      result.best_epoch = epoch;
      result.validation = record.validation;
      result.test = record.test;
      best_values.clear();
      for (const Parameter* p : parameters) best_values.push_back(p->value);
    }
  }
  for (size_t i = 0; i < parameters.size(); ++i) parameters[i]->value = best_values[i];
  result.model_file = export_now(result.history);
  if (trained) *trained = std::move(owned_model);
  result.samples_per_second = static_cast<double>(result.train_samples) / result.train_seconds;
  return result;
}

}  // namespace funnel::train
