#include "train/retrieval/two_tower_training.hpp"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "funnel/model.hpp"
#include "train/core/sparse_optimizer.hpp"
#include "train/core/checkpoint.hpp"
#include "train/core/errors.hpp"
#include "train/core/lr_schedule.hpp"
#include "train/core/subnormals.hpp"
#include "train/core/training_state.hpp"
#include "train/distributed/gradient_allreduce.hpp"
#include "train/distributed/rank_checkpoint.hpp"
#include "train/export/export.hpp"
#include "train/retrieval/cbns.hpp"
#include "train/retrieval/global_negatives.hpp"
#include "train/retrieval/logq.hpp"
#include "train/retrieval/two_tower.hpp"

namespace funnel::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

RetrievalMetrics evaluate_in_memory(const std::vector<uint8_t>& file, const Dataset& data, const Split& split, Holdout holdout,
                                    const std::vector<uint32_t>& ks) {
  std::unique_ptr<Model> model;
  if (Status status = Model::load_bytes(file.data(), file.size(), &model); !status)
    throw TrainingError("the exported model does not load: " + status.to_string());
  return evaluate_model(*model, data, split, holdout, ks);
}

nlohmann::json drift_json(const std::vector<DriftRecord>& records, const std::vector<uint32_t>& deltas) {
  nlohmann::json out = nlohmann::json::object();
  for (uint32_t delta : deltas)
    if (const DriftAverage a = average_drift(records, delta); a.probes)
      out["dt=" + std::to_string(delta)] = {{"sum", a.sum}, {"mean", a.mean}, {"probes", a.probes}};
  return out;
}

// What the model file keeps of an epoch. Timings stay out: the same seed must give the same file.
nlohmann::json epoch_json(const EpochRecord& r, const std::vector<uint32_t>& deltas) {
  return {{"epoch", r.epoch},
          {"loss", r.loss},
          {"ssl_loss", r.ssl_loss},
          {"learning_rate", r.learning_rate},
          {"steps", r.steps},
          {"cbns_active", r.cbns_active},
          {"drift", drift_json(r.drift, deltas)},
          {"validation", r.validation.to_json()}};
}

// The items whose feature drift (eq. 5) is probed: fixed, drawn uniformly from those seen in training.
std::vector<uint32_t> drift_sample(const Dataset& data, const Split& split, const TrainConfig& config) {
  std::vector<uint32_t> trained;
  for (uint32_t i = 0; i < data.items.size(); ++i)
    if (split.item_train_count[i] > 0) trained.push_back(i);
  Rng rng(config.seed ^ 0xD1F7ull);
  rng.shuffle(trained);
  trained.resize(std::min<size_t>(trained.size(), config.drift_sample));
  return trained;
}

// Where the loop stands: with the model, the optimiser, the bank and the generators, everything a run
// needs to continue exactly where it stopped.
struct RunState {
  uint32_t epochs_done = 0;
  long step = 0;
  bool cbns_active = false;
  long cbns_start_step = -1;
  double best_score = -1.0;
  uint32_t best_epoch = 0;
  uint32_t epochs_without_improvement = 0;
  std::vector<std::vector<float>> best_values;  // the parameters at the best epoch so far
  nlohmann::json history = nlohmann::json::array();

  void register_state(TrainingState& state, const std::vector<Parameter*>& parameters) {
    state.value("epochs_done", epochs_done);
    state.value("step", step);
    state.value("cbns_active", cbns_active);
    state.value("cbns_start_step", cbns_start_step);
    state.value("best_score", best_score);
    state.value("best_epoch", best_epoch);
    state.value("epochs_without_improvement", epochs_without_improvement);
    state.value("history", history);
    best_values.clear();
    for (const Parameter* p : parameters) best_values.push_back(p->value);
    for (size_t i = 0; i < parameters.size(); ++i) state.array("best/" + parameters[i]->name, best_values[i]);
  }

  // The memory bank joins the softmax from this step on (eq. 9, after the warm-up).
  void start_cbns(const std::string& why, const TrainObserver& observer) {
    cbns_active = true;
    cbns_start_step = step;
    if (observer.on_note) observer.on_note("CBNS on at step " + std::to_string(step) + why);
  }

  // CBNS joins after its warm-up (eq. 9): a fixed number of steps, or with cbns_auto_warmup the first probe
  // whose drift over the longest dt falls below drift_threshold (the feature drift of eq. 5).
  void maybe_start_cbns(const TrainConfig& config, const std::vector<DriftRecord>& probes, const TrainObserver& observer) {
    if (!config.cbns_auto_warmup) {
      if (step >= static_cast<long>(config.cbns_warmup_steps)) start_cbns(" (after the in-batch warm-up)", observer);
      return;
    }
    for (const DriftRecord& d : probes)
      if (d.delta == config.drift_deltas.back() && d.mean < config.drift_threshold) {
        start_cbns(": feature drift " + std::to_string(d.mean) + " per item over " + std::to_string(d.delta) + " steps, below " +
                       std::to_string(config.drift_threshold),
                   observer);
        return;
      }
  }

  // Early stopping: true, with a note, once `early_stopping_patience` epochs in a row brought no better score.
  bool patience_ran_out(const TrainConfig& config, const TrainObserver& observer) const {
    if (config.early_stopping_patience == 0 || epochs_without_improvement < config.early_stopping_patience) return false;
    if (observer.on_note)
      observer.on_note("early stop after epoch " + std::to_string(epochs_done) + ": no better validation Recall@" +
                       std::to_string(config.select_k) + " for " + std::to_string(epochs_without_improvement) + " epochs");
    return true;
  }

  // Keeps the parameters of the best validation score so far (the earlier epoch on ties).
  void finish_epoch(uint32_t epoch, double score, const std::vector<Parameter*>& parameters) {
    epochs_done = epoch;
    if (score > best_score) {
      best_score = score;
      best_epoch = epoch;
      epochs_without_improvement = 0;
      for (size_t i = 0; i < parameters.size(); ++i) best_values[i] = parameters[i]->value;
    } else {
      ++epochs_without_improvement;
    }
  }
};

// Stops the run when a loss stops being finite: the checkpoint on disk is the last good epoch.
[[noreturn]] void throw_non_finite(double loss, double ssl_loss, uint32_t epoch, size_t step, float rate) {
  throw TrainingError(std::string(std::isfinite(loss) ? "the self-supervised loss" : "the loss") + " became " +
                      std::to_string(std::isfinite(loss) ? ssl_loss : loss) + " at epoch " + std::to_string(epoch) + ", step " +
                      std::to_string(step) + " (learning rate " + std::to_string(rate) +
                      "); the last checkpoint holds the last good epoch. Lower learning_rate or raise temperature");
}

// What the model file keeps of the run, beside the caller's own entries. Timings stay out: the same seed
// must give the same file.
Metadata run_metadata(const Dataset& data, const TrainConfig& config, const TrainResult& result, const RunState& run,
                      const Metadata& extra) {
  Metadata metadata = {
      {"dataset", data.name},
      {"config", config_to_json(config).dump()},
      {"best_epoch", std::to_string(result.best_epoch)},
      {"test_metrics", result.test.to_json().dump()},
      {"most_popular_test_metrics", result.popular_test.to_json().dump()},
      {"history", run.history.dump()},
  };
  metadata.insert(metadata.end(), extra.begin(), extra.end());
  return metadata;
}

// A failure injected for the distributed tests (docs/distributed.md): FUNNEL_FAIL_AT_STEP="<rank>:<step>" makes
// that rank throw after that optimiser step, as a rank whose data or machine failed would.
long injected_failure_step(int rank) {
  const char* spec = std::getenv("FUNNEL_FAIL_AT_STEP");
  if (!spec) return -1;
  char* end = nullptr;
  const long failing_rank = std::strtol(spec, &end, 10);
  if (*end != ':' || failing_rank != rank) return -1;
  return std::strtol(end + 1, nullptr, 10);
}

// What a checkpoint must match to be resumed by this run. Distributed, each rank's file holds its own shard:
// resumable by the same rank of a run of as many ranks.
nlohmann::json run_identity(const Dataset& data, const TrainConfig& config, const Communicator& comm) {
  nlohmann::json identity = {{"dataset", data.name},
                             {"users", data.users.size()},
                             {"items", data.items.size()},
                             {"hidden", config.hidden},
                             {"output_dim", config.output_dim},
                             {"embedding_dim", config.embedding_dim}};
  add_rank_identity(identity, comm);
  if (comm.distributed()) identity["embedding_sharding"] = config.embedding_sharding;
  return identity;
}

// This rank's positives of the global batch: its contiguous part (all of it on one process). Distributed,
// `global` receives the global batch's items in rank order, which is the epoch's order.
void assemble_batch(const std::vector<Interaction>& batch, Communicator& comm, std::vector<uint32_t>& users, std::vector<uint32_t>& items,
                    GlobalBatch& global) {
  users.clear();
  items.clear();
  const size_t n = batch.size(), rank = static_cast<size_t>(comm.rank()), ranks = static_cast<size_t>(comm.size());
  for (size_t i = n * rank / ranks; i < n * (rank + 1) / ranks; ++i) {
    const Interaction& x = batch[i];
    users.push_back(x.user);
    items.push_back(x.item);
  }
  if (!comm.distributed()) return;
  std::vector<int> counts;
  global.items = comm.allgatherv<uint32_t>(items, &counts);
  global.first = static_cast<size_t>(std::accumulate(counts.begin(), counts.begin() + comm.rank(), 0));
  global.count = items.size();
}

// Rank 0 evaluates the whole model (the shards gathered to it) on validation; every rank learns the score,
// so the best epoch and early stopping agree.
double evaluate_epoch(TwoTowerModel& model, const Dataset& data, const Split& split, const TrainConfig& config,
                      const std::vector<uint32_t>& ks, Communicator& comm, EpochRecord& record) {
  model.user_tower().gather_tables(0);
  model.item_tower().gather_tables(0);
  double score = 0.0;
  if (comm.rank() == 0) {
    record.validation = evaluate_in_memory(export_two_tower(data, model, config, {}), data, split, Holdout::kValidation, ks);
    score = record.validation.recall_at(config.select_k);
  }
  comm.broadcast(score, 0);
  return score;
}

// log q of the (global) batch's items: from the training counts, or the streaming estimate, which sees
// the same batches on every rank.
void fill_log_q(const TrainConfig& config, StreamingFrequency& streaming, const std::vector<float>& count_log_q, long step,
                const std::vector<uint32_t>& batch_items, std::vector<float>& log_q) {
  if (config.logq == "streaming") {
    streaming.update(step, batch_items, &log_q);
    return;
  }
  log_q.clear();
  for (uint32_t item : batch_items) log_q.push_back(count_log_q[item]);
}

// One step's forward and backward: the in-batch softmax on one process, global negatives across ranks.
double forward_backward(TwoTowerModel& model, Communicator& comm, const std::vector<uint32_t>& users, const std::vector<uint32_t>& items,
                        const std::vector<float>& log_q, GlobalBatch& global, const TrainConfig& config, const NegativeBank& negatives,
                        double* ssl_loss) {
  if (!comm.distributed()) return two_tower_step(model, users, items, log_q, config, /*backward=*/true, negatives, ssl_loss);
  global.log_q = log_q;
  return global_negatives_step(model, comm, users, global, config, negatives);
}

// Restores a checkpoint when asked: each rank its own file, all from one epoch.
void resume_if_asked(TrainingState& state, const RunState& run, const TrainOptions& options, Communicator& comm,
                     const TrainObserver& observer) {
  if (options.resume.empty()) return;
  state.restore(load_rank_checkpoint(comm, options.resume));
  require_same_epoch(comm, run.epochs_done, options.resume);
  if (observer.on_note)
    observer.on_note("resumed from " + options.resume + " after epoch " + std::to_string(run.epochs_done) + " (step " +
                     std::to_string(run.step) + ")");
}

}  // namespace

TrainResult train_two_tower(const Dataset& data, const Split& full_split, const TrainConfig& config, const TrainOptions& options) {
  // Sparse-data studies train on a share of the interactions and are scored like the full run.
  const Split subsampled = config.train_fraction < 1.0f ? subsample_training(full_split, config.train_fraction, config.seed) : Split{};
  const Split& split = config.train_fraction < 1.0f ? subsampled : full_split;
  InMemoryInteractions rows(split.train);
  return train_two_tower(data, split, rows, config, options);
}

TrainResult train_two_tower(const Dataset& data, const Split& split, InteractionBatches& rows, const TrainConfig& config,
                            const TrainOptions& options) {
  const uint64_t train_rows = rows.rows();
  if (train_rows < 2) throw TrainingError("fewer than 2 training interactions");
  omp_set_num_threads(config.threads > 0 ? static_cast<int>(config.threads) : omp_get_num_procs());
  flush_subnormals_to_zero();
  Communicator& comm = options.communicator ? *options.communicator : local_communicator();
  const bool distributed = comm.distributed();
  const int rank = comm.rank(), ranks = comm.size();
  if (distributed && config.ssl != "none")
    throw ConfigError("ssl '" + config.ssl + "': the self-supervised task is not supported across ranks yet (it draws its own batches); "
                      "train it on one process");
  const TrainObserver quiet;
  const TrainObserver& observer = rank == 0 ? options.observer : quiet;
  std::vector<uint32_t> ks = config.eval_k;
  if (std::find(ks.begin(), ks.end(), config.select_k) == ks.end()) ks.push_back(config.select_k);

  TwoTowerModel model(data, config);
  if (distributed && config.embedding_sharding == "sharded") {
    model.user_tower().shard_tables(comm);
    model.item_tower().shard_tables(comm);
  }
  SelfSupervisedTask* ssl = model.self_supervised();
  if (ssl) ssl->set_training_counts(split.item_train_count);
  if (ssl && config.ssl == "cfm" && observer.on_note) observer.on_note("CFM masks together, by seed: " + ssl->correlated_groups());
  std::vector<Parameter*> parameters = model.parameters();
  GradientAllReduce allreduce(comm, model.replicated_parameters());
  TrainerOptimizer adam(parameters, {config.learning_rate, 0.9f, 0.999f, 1e-8f, config.optimizer == "lazy_adam"}, config.sparse_optimizer,
                        config.sparse_optimizer_min_rows, config.sparse_learning_rate, model.whole_rows());
  const size_t dim = config.output_dim;
  const bool cbns = config.negatives == "cbns";
  MemoryBank bank(cbns ? config.memory_size : 0, dim);
  StreamingFrequency streaming(config.logq == "streaming" ? config.streaming_buckets : 1, config.streaming_alpha);
  const std::vector<float> count_log_q = log_q_from_counts(split.item_train_count, train_rows);

  DriftMonitor drift(drift_sample(data, split, config), config.drift_deltas, config.drift_interval);
  const auto embed_items = [&model](std::span<const uint32_t> rows, float* out) {
    if (model.item_tower().sharded()) model.item_tower().fetch_rows(rows);  // collective: every rank probes alike
    const float* v = model.item_tower().forward(rows);
    std::copy(v, v + rows.size() * model.item_tower().output_dim(), out);
  };

  Rng shuffle_rng(config.seed ^ 0x5DEECE66Dull);
  RunState run;
  TrainingState state(run_identity(data, config, comm));
  state.note("config", config_to_json(config));
  state.parameters(parameters);
  adam.register_state(state);
  bank.register_state(state);
  streaming.register_state(state);
  state.rng("shuffle_rng", shuffle_rng);
  if (ssl) state.rng("ssl_rng", ssl->rng());
  run.register_state(state, parameters);
  resume_if_asked(state, run, options, comm, observer);

  std::vector<Interaction> batch;
  std::vector<uint32_t> users, items;
  std::vector<float> log_q;
  GlobalBatch global;
  // Distributed, each rank takes its contiguous part of every global batch of batch_size x ranks positives
  // (the same order on every rank: `rows` reads the whole data alike on each), so 2 ranks of batch b step as
  // 1 process of batch 2b does.
  const size_t global_batch_size = static_cast<size_t>(config.batch_size) * static_cast<size_t>(ranks);
  const size_t steps_per_epoch = (train_rows + global_batch_size - 1) / global_batch_size;
  const long fail_at_step = injected_failure_step(rank);
  const long total_steps = static_cast<long>(steps_per_epoch) * config.epochs;
  const LrSchedule schedule = lr_schedule_of(config);
  TrainResult result;
  double train_seconds = 0.0;
  size_t samples = 0;
  bool stop = false;

  for (uint32_t epoch = run.epochs_done + 1; epoch <= config.epochs && !stop; ++epoch) {
    // The order is drawn from the epoch's own state, so a resumed run shuffles as the original did.
    rows.start_epoch(shuffle_rng);
    drift.reset_probe();
    EpochRecord record;
    record.epoch = epoch;
    const auto start = Clock::now();
    double loss_sum = 0.0, ssl_loss_sum = 0.0;
    size_t batches = 0;
    float rate = config.learning_rate;
    size_t end = 0;  // rows of the epoch so far
    for (size_t s = 0; s < steps_per_epoch; ++s) {
      batch.clear();
      end += rows.next(global_batch_size, &batch);
      if (batch.size() < 2) continue;  // a softmax over one column has nothing to learn from
      const uint64_t calls_before = comm.collective_calls();
      assemble_batch(batch, comm, users, items, global);
      const std::vector<uint32_t>& batch_items = distributed ? global.items : items;
      fill_log_q(config, streaming, count_log_q, run.step, batch_items, log_q);
      rate = learning_rate_at(schedule, run.step, total_steps);
      adam.set_learning_rate(rate);
      const NegativeBank negatives = run.cbns_active ? bank.negatives(config.bank_logq, config.cbns_balanced_item_gradient) : NegativeBank{};
      double ssl_loss = 0.0;
      const double loss = forward_backward(model, comm, users, items, log_q, global, config, negatives, &ssl_loss);
      if (!std::isfinite(loss) || !std::isfinite(ssl_loss)) throw_non_finite(loss, ssl_loss, epoch, s + 1, rate);
      allreduce.reduce();
      result.step_collectives += comm.collective_calls() - calls_before;
      adam.step();
      // Eq. 9: the batch's item embeddings (detached) and their log q join the bank, the oldest leave;
      // distributed, the global batch's, the same on every rank.
      if (cbns)
        bank.enqueue(distributed ? global.embeddings.data() : model.item_tower().output(), log_q.data(), batch_items.data(), batch_items.size());
      ++run.step;
      if (run.step == fail_at_step)
        throw TrainingError("injected failure after step " + std::to_string(run.step) + " (FUNNEL_FAIL_AT_STEP)");
      loss_sum += loss;
      ssl_loss_sum += ssl_loss;
      ++batches;

      const std::vector<DriftRecord> probes = config.drift_sample > 0 ? drift.after_step(run.step, dim, embed_items) : std::vector<DriftRecord>{};
      record.drift.insert(record.drift.end(), probes.begin(), probes.end());
      if (cbns && !run.cbns_active) run.maybe_start_cbns(config, probes, observer);
      if (observer.on_progress && (s % 16 == 0 || s + 1 == steps_per_epoch))
        observer.on_progress(epoch, s + 1, steps_per_epoch, loss_sum / static_cast<double>(batches),
                             static_cast<double>(end) / std::max(seconds_since(start), 1e-9));
    }
    const double seconds = seconds_since(start);
    train_seconds += seconds;
    samples += train_rows;

    record.loss = loss_sum / static_cast<double>(std::max<size_t>(batches, 1));
    record.ssl_loss = ssl_loss_sum / static_cast<double>(std::max<size_t>(batches, 1));
    record.samples_per_second = static_cast<double>(train_rows) / seconds;
    record.learning_rate = rate;
    record.steps = run.step;
    record.cbns_active = run.cbns_active;
    const double score = evaluate_epoch(model, data, split, config, ks, comm, record);
    result.history.push_back(record);
    run.history.push_back(epoch_json(record, config.drift_deltas));
    run.finish_epoch(epoch, score, parameters);
    // The checkpoint is written before anyone hears of the epoch: whatever happens next, it holds it.
    if (!options.checkpoint.empty()) save_rank_checkpoint(comm, state, options.checkpoint, epoch);
    if (observer.on_epoch) observer.on_epoch(record);
    stop = result.stopped_early = run.patience_ran_out(config, observer);
  }

  // Before any epoch ran best_values are the initial values, as the parameters are.
  for (size_t i = 0; i < parameters.size(); ++i) parameters[i]->value = run.best_values[i];
  result.best_epoch = run.best_epoch;
  result.train_interactions = train_rows;
  result.cbns_start_step = run.cbns_start_step;
  result.train_seconds = train_seconds;
  result.samples_per_second = train_seconds > 0 ? static_cast<double>(samples) / train_seconds : 0.0;
  result.steps = run.step;
  result.exchange_bytes = model.user_tower().bytes_sent() + model.item_tower().bytes_sent();
  result.allreduce_bytes = allreduce.bytes_reduced();
  model.user_tower().gather_tables(0);
  model.item_tower().gather_tables(0);
  if (rank != 0) return result;
  result.test = evaluate_in_memory(export_two_tower(data, model, config, {}), data, split, Holdout::kTest, ks);
  result.popular_test = evaluate_most_popular(data, split, Holdout::kTest, ks);

  result.model_file = export_two_tower(data, model, config, run_metadata(data, config, result, run, options.metadata));
  return result;
}

}  // namespace funnel::train
