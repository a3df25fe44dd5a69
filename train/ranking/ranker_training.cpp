#include "train/ranking/ranker_training.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <unordered_map>

#include "train/core/sparse_optimizer.hpp"
#include "train/data/ctr_stream.hpp"
#include "train/export/export.hpp"
#include "train/ranking/ctr_losses.hpp"
#include "train/core/errors.hpp"
#include "train/ranking/ranker_model.hpp"
#include "train/ranking/ranker_parallel.hpp"
#include "train/distributed/rank_checkpoint.hpp"
#include "train/core/subnormals.hpp"
#include "train/core/training_state.hpp"

namespace funnel::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }


// Deferred Adam brings the rows a batch reads, once each, up to date before the forward pass.
class RowCatchUp {
 public:
  RowCatchUp(RankerModel& model, Adam& adam, const std::vector<Parameter*>& parameters, const CtrInstances& instances, bool deferred)
      : model_(model), adam_(adam), instances_(instances), deferred_(deferred), marked_(parameters.size()) {
    for (uint32_t i = 0; i < parameters.size(); ++i) {
      index_of_[parameters[i]] = i;
      if (parameters[i]->sparse) marked_[i].assign(parameters[i]->size() / parameters[i]->row_size, 0);
    }
  }
  void operator()(std::span<const uint32_t> batch) const {
    if (!deferred_) return;
    rows_read_.clear();
    model_.for_each_row_read(instances_, instances_.train, batch, [&](const Parameter* p, uint32_t row) {
      const auto found = index_of_.find(p);
      if (found == index_of_.end()) return;  // a table of the sparse optimiser, current by construction
      const uint32_t i = found->second;
      if (!marked_[i][row]) {
        marked_[i][row] = 1;
        rows_read_.emplace_back(i, row);
      }
    });
    for (const auto& [i, row] : rows_read_) marked_[i][row] = 0;
    adam_.catch_up_rows(rows_read_);
  }

 private:
  RankerModel& model_;
  Adam& adam_;
  const CtrInstances& instances_;
  bool deferred_;
  std::unordered_map<const Parameter*, uint32_t> index_of_;
  mutable std::vector<std::vector<uint8_t>> marked_;
  mutable std::vector<std::pair<uint32_t, uint32_t>> rows_read_;
};


// Where the loop stands: with the model, the optimiser, GHM-C's counts and the shuffling generator,
// everything a run needs to continue exactly where it stopped.
struct RunState {
  uint32_t epochs_done = 0;
  double best_auc = -1.0;
  uint32_t best_epoch = 0;
  nlohmann::json history = nlohmann::json::array();  // per epoch: epoch, loss, timings, validation, test
  std::vector<std::vector<float>> best_values;       // the parameters of the chosen epoch so far

  void register_state(TrainingState& state, const std::vector<Parameter*>& parameters) {
    state.value("epochs_done", epochs_done);
    state.value("best_auc", best_auc);
    state.value("best_epoch", best_epoch);
    state.value("history", history);
    best_values.clear();
    for (const Parameter* p : parameters) best_values.push_back(p->value);
    for (size_t i = 0; i < parameters.size(); ++i) state.array("best/" + parameters[i]->name, best_values[i]);
  }

  // Keeps the parameters of the best validation AUC (the earlier epoch on ties; the last without validation).
  void finish_epoch(const RankerEpoch& record, bool has_validation, const std::vector<Parameter*>& parameters) {
    epochs_done = record.epoch;
    history.push_back({{"epoch", record.epoch},
                       {"loss", record.loss},
                       {"train_seconds", record.train_seconds},
                       {"samples_per_second", record.samples_per_second},
                       {"validation", ctr_metrics_json(record.validation)},
                       {"test", ctr_metrics_json(record.test)}});
    if (!has_validation || record.validation.auc > best_auc) {
      best_auc = record.validation.auc;
      best_epoch = record.epoch;
      for (size_t i = 0; i < parameters.size(); ++i) best_values[i] = parameters[i]->value;
    }
  }

  // What the model file keeps of the epochs. Timings stay out: the same seed must give the same file.
  nlohmann::json file_history() const {
    nlohmann::json out = nlohmann::json::array();
    for (const nlohmann::json& e : history)
      out.push_back({{"epoch", e.at("epoch")}, {"loss", e.at("loss")}, {"validation", e.at("validation")}, {"test", e.at("test")}});
    return out;
  }

  void fill(RankerResult* result, size_t instances) const {
    for (const nlohmann::json& e : history) {
      RankerEpoch record;
      record.epoch = e.at("epoch");
      record.loss = e.at("loss");
      record.train_seconds = e.at("train_seconds");
      record.samples_per_second = e.at("samples_per_second");
      record.validation = ctr_metrics_from_json(e.at("validation"));
      record.test = ctr_metrics_from_json(e.at("test"));
      if (record.epoch == best_epoch) {
        result->validation = record.validation;
        result->test = record.test;
      }
      result->train_seconds += record.train_seconds;
      result->train_samples += instances;
      result->history.push_back(record);
    }
    result->best_epoch = best_epoch;
    result->samples_per_second = result->train_seconds > 0 ? static_cast<double>(result->train_samples) / result->train_seconds : 0.0;
  }
};

}  // namespace

nlohmann::json ranker_identity(const CtrDataset& ctr, const RankerConfig& config, const std::string& prefix) {
  nlohmann::json identity = {{"dataset", ctr.data.name},
                             {"users", ctr.data.users.size()},
                             {"items", ctr.data.items.size()},
                             {"train_instances", train_instance_count(ctr)},
                             {"validation_instances", ctr.instances.validation.size()},
                             {"test_instances", ctr.instances.test.size()}};
  const nlohmann::json fields = ranker_config_to_json(config);
  for (const auto& [field, value] : fields.items())
    if (field != "epochs" && field != "threads") identity[prefix + field] = value;
  return identity;
}

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

namespace {

// One training step and one epoch's end of train_ranker, over the pieces it set up.
struct RankerLoop {
  const CtrDataset& ctr;
  const RankerConfig& config;
  const RankerObserver& observer;
  const LossTerm& extra_loss;
  const RankerCheckpoints& checkpoints;
  Communicator& comm;
  RankerModel& model;
  RankerParallel& parallel;
  TrainerOptimizer& optimizer;
  const RowCatchUp& catch_up;
  GhmC& ghm;
  RunState& run;
  TrainingState& state;
  CtrBatch& batch;  // the global batch, or this rank's rows of it (rank_local); RankerParallel and RowCatchUp read it by reference
  bool rank_local;  // under mpirun on a prepared folder: every rank reads its own shards, as many rows a step
  std::vector<uint32_t> positions;
  std::vector<uint32_t> ids;
  std::vector<float> logits, dlogits, labels;

  // The step on the global batch in `batch` (this rank takes its part); returns the global batch's loss.
  float step(uint32_t epoch, size_t step) {
    const CtrSplit& train = batch.instances.train;
    positions.resize(batch.size());
    std::iota(positions.begin(), positions.end(), 0u);
    // This rank's part of the global batch (rank-local: all it read); the losses divide by the global batch's size.
    const std::span<const uint32_t> local = rank_local ? std::span<const uint32_t>(positions) : parallel.local_part(positions);
    const size_t b = local.size();
    const double denominator = static_cast<double>(batch.size()) * (rank_local ? static_cast<double>(comm.size()) : 1.0);
    catch_up(local);
    parallel.fetch_rows(local);
    if (b > 0) model.forward(batch.instances, train, local, logits.data());
    for (size_t k = 0; k < b; ++k) labels[k] = train.label[local[k]];
    const std::span<const float> batch_logits(logits.data(), b), batch_labels(labels.data(), b);
    const std::span<float> batch_dlogits(dlogits.data(), b);
    const BatchSum sum_over_ranks = comm.distributed() ? BatchSum([this](std::span<double> v) { comm.allreduce_sum(v); }) : BatchSum();
    const FocalOptions focal{config.focal_gamma, config.focal_alpha};
    float loss = 0.0f;
    if (config.loss == "focal") loss = focal_loss(batch_logits, batch_labels, focal, batch_dlogits, denominator);
    else if (config.loss == "ghm") loss = ghm.loss(batch_logits, batch_labels, batch_dlogits, sum_over_ranks);
    else loss = bce_loss(batch_logits, batch_labels, batch_dlogits, denominator);
    if (extra_loss) {
      ids.clear();
      for (uint32_t k : local) ids.push_back(batch.ids[k]);
      loss = extra_loss(ids, batch_logits, loss, batch_dlogits);
    }
    if (b > 0) model.backward(batch_dlogits);
    loss = parallel.reduce_gradients(loss);
    if (!std::isfinite(loss))
      throw TrainingError("the loss became " + std::to_string(loss) + " at epoch " + std::to_string(epoch) + ", step " +
                          std::to_string(step + 1) + " (learning rate " + std::to_string(config.learning_rate) + ")" +
                          (checkpoints.checkpoint.empty() ? "" : "; the last checkpoint holds the last good epoch"));
    optimizer.step();
    return loss;
  }

  std::vector<uint8_t> export_now() const {
    const Metadata metadata = {{"dataset", ctr.data.name}, {"stage", "ranking"}, {"ranking_config", ranker_config_to_json(config).dump()},
                               {"ranking_epochs", run.file_history().dump()}};
    return export_ranker(ctr.data, model, metadata);
  }

  // On rank 0 (the others get rank 0's metrics through share()).
  CtrMetrics evaluate(const std::vector<uint8_t>& file, const CtrSplit& split) const {
    if (split.size() == 0 || comm.rank() != 0) return CtrMetrics{};
    std::unique_ptr<Model> loaded;
    if (Status s = Model::load_bytes(file.data(), file.size(), &loaded); !s) throw TrainingError("the exported model does not load: " + s.to_string());
    return evaluate_ranker(*loaded, ctr.data, ctr.instances, split);
  }

  // The epoch's end: the rest of dense Adam's work (timed with the epoch), evaluation on rank 0, the best epoch
  // kept, the checkpoint written before anyone hears of the epoch (whatever happens next, it holds it).
  void end_epoch(uint32_t epoch, double loss_sum, size_t steps, uint64_t instances, Clock::time_point start) {
    optimizer.adam().sync_all();
    RankerEpoch record;
    record.epoch = epoch;
    record.loss = loss_sum / static_cast<double>(steps);
    record.train_seconds = seconds_since(start);
    record.samples_per_second = static_cast<double>(instances) / record.train_seconds;
    parallel.gather_tables();
    const std::vector<uint8_t> file = comm.rank() == 0 ? export_now() : std::vector<uint8_t>();
    record.validation = evaluate(file, ctr.instances.validation);
    record.test = evaluate(file, ctr.instances.test);
    parallel.share(record.validation);
    parallel.share(record.test);
    run.finish_epoch(record, ctr.instances.validation.size() > 0, parallel.optimised());
    if (!checkpoints.checkpoint.empty()) save_rank_checkpoint(comm, state, checkpoints.checkpoint, epoch);
    if (observer.on_epoch) observer.on_epoch(record);
  }
};

}  // namespace

RankerResult train_ranker(const CtrDataset& ctr, const RankerConfig& config, const RankerObserver& observer,
                          const LossTerm& extra_loss, std::unique_ptr<RankerModel>* trained, const RankerCheckpoints& checkpoints,
                          Communicator& comm) {
  const Dataset& data = ctr.data;
  const uint64_t n = train_instance_count(ctr);
  if (n == 0) throw TrainingError("ranking: the data gives no training instances");
  if (comm.distributed() && (extra_loss || checkpoints.register_more || checkpoints.resume_read))
    throw TrainingError("ranking: a run with more than the ranker (AutoFAS's distillation or search) is not data-parallel; run it without mpirun");
  omp_set_num_threads(config.threads > 0 ? static_cast<int>(config.threads) : omp_get_num_procs());
  flush_subnormals_to_zero();

  // A sharded run's tables live in the ranks' shards (ranker_parallel.hpp): the model allocates none whole.
  auto owned_model = std::make_unique<RankerModel>(data, config, !(comm.distributed() && config.embedding_sharding == "sharded"));
  RankerModel& model = *owned_model;
  // Rng(seed + 1) is Rng(seed) one draw later; mixing the seed first gives each seed its own stream.
  Rng rng(Rng(config.seed).next());
  model.init(rng);
  // The epoch's batches, in memory or streamed (ctr_stream.hpp); the global batch lives in `batch`. Under mpirun
  // a prepared folder's shards are split over the ranks (i % world == rank), each rank training on its own.
  const bool rank_local = ctr.streamed && comm.distributed();
  const std::unique_ptr<CtrBatches> source =
      ctr_batches(ctr, config.max_history, static_cast<uint32_t>(comm.rank()), rank_local ? static_cast<uint32_t>(comm.size()) : 1);
  CtrBatch batch;
  // Under mpirun, the parameters this rank optimises and checkpoints (ranker_parallel.hpp); alone, the model's.
  RankerParallel parallel(comm, model, config, batch.instances);
  std::vector<Parameter*> parameters = parallel.optimised();
  AdamOptions adam_options;
  adam_options.learning_rate = config.learning_rate;
  adam_options.lazy = config.optimizer == "lazy_adam";
  // Dense Adam's values, computed late: a step costs what its batch touches, not the tables' size. A shard
  // takes dense Adam's every step on the rows it owns instead (its owner serves rows other ranks read, so they
  // must be current): the same values, at a cost of table / world per step.
  adam_options.deferred = !adam_options.lazy && !parallel.sharded();
  // A shard is optimised as its whole table would be (sparse_optimizer_min_rows counts the table's rows).
  TrainerOptimizer optimizer(parameters, adam_options, config.sparse_optimizer, config.sparse_optimizer_min_rows, config.sparse_learning_rate,
                             parallel.whole_rows());
  const RowCatchUp catch_up(model, optimizer.adam(), optimizer.adam_parameters(), batch.instances, adam_options.deferred);
  GhmC ghm(config.ghm_bins, config.ghm_momentum);

  RunState run;
  nlohmann::json identity = ranker_identity(ctr, config);
  for (const auto& [field, value] : checkpoints.identity.items()) identity[field] = value;
  // Under mpirun each rank writes its own checkpoint (its shards, the replicated rest) and resumes only its own.
  add_rank_identity(identity, comm);
  const std::string& resume_path = checkpoints.resume;
  TrainingState state(identity);
  state.note("config", ranker_config_to_json(config));
  state.parameters(parameters);
  optimizer.register_state(state);
  state.rng("shuffle_rng", rng);
  state.add([&ghm](Checkpoint& c) { c.floats["ghm/accumulated"] = ghm.accumulated(); },
            [&ghm](const Checkpoint& c) { ghm.restore(c.float_array("ghm/accumulated")); });
  run.register_state(state, parameters);
  if (checkpoints.register_more) checkpoints.register_more(state);
  if (!checkpoints.resume.empty()) {
    if (checkpoints.resume_read)
      state.restore(*checkpoints.resume_read);
    else
      state.restore(load_rank_checkpoint(comm, resume_path));
    if (run.epochs_done > config.epochs)
      throw TrainingError(resume_path + ": the checkpoint has " + std::to_string(run.epochs_done) +
                          " epochs done, more than this run's 'epochs' (" + std::to_string(config.epochs) + "); a resumed run may only go on for longer");
    require_same_epoch(comm, run.epochs_done, resume_path);
    if (checkpoints.on_note)
      checkpoints.on_note("resumed from " + resume_path + " after epoch " + std::to_string(run.epochs_done));
  }

  RankerLoop loop{ctr,     config,   observer, extra_loss, checkpoints, comm,  model, parallel,
                  optimizer, catch_up, ghm,    run,        state,       batch, rank_local, {}, {},
                  std::vector<float>(config.batch_size), std::vector<float>(config.batch_size), std::vector<float>(config.batch_size)};
  // A global batch is batch_size on every rank (ranker_parallel.hpp). Rank-local, every rank trains as many rows
  // an epoch as the smallest holds (one all-gather of the counts); the rest of its shuffled stream is dropped.
  const size_t global_batch = size_t{config.batch_size} * static_cast<size_t>(comm.size());
  uint64_t rank_rows = n, trained_rows = n;
  if (rank_local) {
    const uint64_t mine = source->rows();
    const std::vector<uint64_t> counts = comm.allgatherv<uint64_t>(std::span<const uint64_t>(&mine, 1));
    rank_rows = *std::min_element(counts.begin(), counts.end());
    trained_rows = rank_rows * static_cast<uint64_t>(comm.size());
    if (checkpoints.on_note)
      checkpoints.on_note("each rank trains on its own CTR shards: " + std::to_string(rank_rows) + " instances an epoch (the smallest rank's); " +
                          std::to_string(n - trained_rows) + " past it are dropped each epoch");
  }
  const size_t steps = static_cast<size_t>(rank_local ? (rank_rows + config.batch_size - 1) / config.batch_size : (n + global_batch - 1) / global_batch);
  size_t steps_run = 0;
  for (uint32_t epoch = run.epochs_done + 1; epoch <= config.epochs; ++epoch) {
    const auto start = Clock::now();
    // Rank-local: each rank shuffles its shards and buffer from the epoch's seed (drawn from the checkpointed
    // generator, the same on every rank) and its rank; otherwise from the generator itself.
    Rng epoch_rng(0);
    if (rank_local) epoch_rng = Rng(rng.next() + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(comm.rank() + 1));
    source->start_epoch(rank_local ? epoch_rng : rng);
    double loss_sum = 0.0;
    size_t seen = 0;
    steps_run += steps;
    for (size_t step = 0; step < steps; ++step) {
      seen += source->next(rank_local ? static_cast<size_t>(std::min<uint64_t>(config.batch_size, rank_rows - seen)) : global_batch, &batch);
      loss_sum += loop.step(epoch, step);
      if (observer.on_progress && ((step + 1) % 50 == 0 || step + 1 == steps))
        observer.on_progress(epoch, step + 1, steps, loss_sum / static_cast<double>(step + 1),
                             static_cast<double>(seen) * (rank_local ? comm.size() : 1) / seconds_since(start));
    }
    loop.end_epoch(epoch, loss_sum, steps, trained_rows, start);
  }

  RankerResult result;
  result.parameters = model.parameter_count();
  run.fill(&result, trained_rows);
  if (steps_run > 0) result.exchange_bytes_per_step = static_cast<double>(parallel.table_bytes_sent()) / static_cast<double>(steps_run);
  for (size_t i = 0; i < parameters.size(); ++i) parameters[i]->value = run.best_values[i];
  parallel.gather_tables();
  if (comm.rank() == 0) result.model_file = loop.export_now();
  if (trained) *trained = std::move(owned_model);
  return result;
}

}  // namespace funnel::train
