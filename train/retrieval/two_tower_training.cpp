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

// This rank's positives: its contiguous part of the global batch (all of it on one process), or, when the
// rank reads rows of its own (`rank_local`), the whole of `batch`. Distributed, `global` receives the global
// batch's items in rank order, which is the epoch's order.
void assemble_batch(const std::vector<Interaction>& batch, bool rank_local, Communicator& comm, std::vector<uint32_t>& users,
                    std::vector<uint32_t>& items, GlobalBatch& global) {
  users.clear();
  items.clear();
  const size_t n = batch.size(), rank = static_cast<size_t>(comm.rank()), ranks = static_cast<size_t>(comm.size());
  const size_t first = rank_local ? 0 : n * rank / ranks, last = rank_local ? n : n * (rank + 1) / ranks;
  for (size_t i = first; i < last; ++i) {
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

// How an epoch's rows reach the ranks (docs/distributed.md, "Where the data must be").
struct EpochPlan {
  bool rank_local = false;    // each rank trains on its own rows (its shards); else on its part of every global batch
  uint64_t source_rows = 0;   // the training rows, over all ranks (logQ's count denominator)
  uint64_t trained_rows = 0;  // rows trained per epoch, over all ranks
  uint64_t dropped_rows = 0;  // rank-local: the rows past the smallest rank's count, over all ranks, per epoch
  uint64_t rank_rows = 0;     // rank-local: rows each rank trains per epoch (the smallest rank's count)
  size_t request = 0;         // rows a step asks of the reader: the global batch, or (rank-local) this rank's batch
  size_t steps = 0;           // per epoch, the same on every rank
};

// Rank-local rows: a step takes batch_size rows of every rank, so all ranks train, per epoch, as many rows as
// the smallest rank holds (one all-gather of the counts at the start); each rank's epoch stops there and the
// rest of its shuffled stream is dropped (other rows each epoch), with a note saying how many.
EpochPlan plan_epochs(const InteractionBatches& rows, Communicator& comm, const TrainConfig& config, const TrainObserver& observer) {
  EpochPlan plan;
  const size_t ranks = static_cast<size_t>(comm.size());
  plan.rank_local = rows.rank_local();
  if (plan.rank_local && !comm.distributed())
    throw ConfigError("a reader of one rank's shards trains in a distributed run only (TrainOptions::communicator of several ranks)");
  if (!plan.rank_local) {
    plan.source_rows = plan.trained_rows = rows.rows();
    plan.request = static_cast<size_t>(config.batch_size) * ranks;
  } else {
    const uint64_t mine = rows.rows();
    const std::vector<uint64_t> counts = comm.allgatherv<uint64_t>(std::span<const uint64_t>(&mine, 1));
    plan.rank_rows = *std::min_element(counts.begin(), counts.end());
    plan.source_rows = std::accumulate(counts.begin(), counts.end(), uint64_t{0});
    plan.trained_rows = plan.rank_rows * ranks;
    plan.dropped_rows = plan.source_rows - plan.trained_rows;
    plan.request = config.batch_size;
    if (observer.on_note) {
      std::string held;
      for (uint64_t c : counts) held += (held.empty() ? "" : ", ") + std::to_string(c);
      observer.on_note("each rank trains on its own shards: " + std::to_string(plan.rank_rows) + " rows an epoch (the smallest rank's); " +
                       std::to_string(plan.dropped_rows) + " rows past it are dropped each epoch (the ranks hold " + held + ")");
    }
  }
  if (plan.trained_rows < 2) throw TrainingError("fewer than 2 training interactions");
  plan.steps = static_cast<size_t>(((plan.rank_local ? plan.rank_rows : plan.trained_rows) + plan.request - 1) / plan.request);
  return plan;
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
  return global_negatives_step(model, comm, users, global, config, negatives, ssl_loss);
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

// One run's training loop: the model, its optimiser and the state a step and an epoch's end share.
class TwoTowerLoop {
 public:
  TwoTowerLoop(const Dataset& data, const Split& split, InteractionBatches& rows, const TrainConfig& config, const TrainOptions& options)
      : data_(data),
        split_(split),
        rows_(rows),
        config_(config),
        options_(options),
        comm_(options.communicator ? *options.communicator : local_communicator()),
        observer_(comm_.rank() == 0 ? options.observer : quiet_),
        plan_(plan_epochs(rows, comm_, config, observer_)),
        model_(data, config, comm_.distributed() && config.embedding_sharding == "sharded" ? &comm_ : nullptr),
        allreduce_(comm_, model_.replicated_parameters()),
        parameters_(model_.parameters()),
        adam_(parameters_, {config.learning_rate, 0.9f, 0.999f, 1e-8f, config.optimizer == "lazy_adam"}, config.sparse_optimizer,
              config.sparse_optimizer_min_rows, config.sparse_learning_rate, model_.whole_rows()),
        bank_(config.negatives == "cbns" ? config.memory_size : 0, config.output_dim),
        streaming_(config.logq == "streaming" ? config.streaming_buckets : 1, config.streaming_alpha),
        count_log_q_(log_q_from_counts(split.item_train_count, plan_.source_rows)),
        drift_(drift_sample(data, split, config), config.drift_deltas, config.drift_interval),
        shuffle_rng_(config.seed ^ 0x5DEECE66Dull),
        state_(run_identity(data, config, comm_)),
        schedule_(lr_schedule_of(config)),
        total_steps_(static_cast<long>(plan_.steps) * config.epochs),
        fail_at_step_(injected_failure_step(comm_.rank())) {
    ks_ = config.eval_k;
    if (std::find(ks_.begin(), ks_.end(), config.select_k) == ks_.end()) ks_.push_back(config.select_k);
    SelfSupervisedTask* ssl = model_.self_supervised();
    if (ssl) ssl->set_training_counts(split.item_train_count);
    if (ssl && config.ssl == "cfm" && observer_.on_note) observer_.on_note("CFM masks together, by seed: " + ssl->correlated_groups());
    state_.note("config", config_to_json(config));
    state_.parameters(parameters_);
    adam_.register_state(state_);
    bank_.register_state(state_);
    streaming_.register_state(state_);
    state_.rng("shuffle_rng", shuffle_rng_);
    if (ssl) state_.rng("ssl_rng", ssl->rng());
    run_.register_state(state_, parameters_);
    resume_if_asked(state_, run_, options, comm_, observer_);
  }

  TrainResult run() {
    for (uint32_t epoch = run_.epochs_done + 1; epoch <= config_.epochs; ++epoch)
      if (!train_epoch(epoch)) break;
    return finish();
  }

 private:
  const Dataset& data_;
  const Split& split_;
  InteractionBatches& rows_;
  const TrainConfig& config_;
  const TrainOptions& options_;
  Communicator& comm_;
  const TrainObserver quiet_;
  const TrainObserver& observer_;
  const EpochPlan plan_;
  TwoTowerModel model_;
  GradientAllReduce allreduce_;
  std::vector<Parameter*> parameters_;
  TrainerOptimizer adam_;
  MemoryBank bank_;
  StreamingFrequency streaming_;
  const std::vector<float> count_log_q_;
  DriftMonitor drift_;
  Rng shuffle_rng_;
  RunState run_;
  TrainingState state_;
  const LrSchedule schedule_;
  const long total_steps_;
  const long fail_at_step_;
  std::vector<uint32_t> ks_;
  TrainResult result_;
  double train_seconds_ = 0.0;
  size_t samples_ = 0;
  // A step's buffers.
  std::vector<Interaction> batch_;
  std::vector<uint32_t> users_, items_;
  std::vector<float> log_q_;
  GlobalBatch global_;

  // The epoch's order. Rank-local rows: each rank shuffles its shards and buffer from the epoch's seed (drawn
  // from the shuffle generator, the same on every rank) and its rank; otherwise every rank draws the same
  // permutation of all the rows. Either way, from the checkpointed generator: a resumed run shuffles alike.
  void start_epoch(Rng& epoch_rng) {
    if (!plan_.rank_local) return rows_.start_epoch(shuffle_rng_);
    epoch_rng = Rng(shuffle_rng_.next() + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(comm_.rank() + 1));
    rows_.start_epoch(epoch_rng);
  }

  // One optimiser step on the epoch's next rows; false when they hold too few positives to learn from.
  bool step(uint32_t epoch, size_t s, size_t& read, EpochRecord& record, double& loss_sum, double& ssl_loss_sum, float& rate) {
    batch_.clear();
    const size_t want = plan_.rank_local ? static_cast<size_t>(std::min<uint64_t>(plan_.request, plan_.rank_rows - read)) : plan_.request;
    read += rows_.next(want, &batch_);
    // A softmax over one column has nothing to learn from (rank-local, every rank holds as many rows).
    if (batch_.size() * (plan_.rank_local ? static_cast<size_t>(comm_.size()) : 1) < 2) return false;
    const bool distributed = comm_.distributed();
    const uint64_t calls_before = comm_.collective_calls();
    assemble_batch(batch_, plan_.rank_local, comm_, users_, items_, global_);
    const std::vector<uint32_t>& batch_items = distributed ? global_.items : items_;
    fill_log_q(config_, streaming_, count_log_q_, run_.step, batch_items, log_q_);
    rate = learning_rate_at(schedule_, run_.step, total_steps_);
    adam_.set_learning_rate(rate);
    const NegativeBank negatives = run_.cbns_active ? bank_.negatives(config_.bank_logq, config_.cbns_balanced_item_gradient) : NegativeBank{};
    double ssl_loss = 0.0;
    const double loss = forward_backward(model_, comm_, users_, items_, log_q_, global_, config_, negatives, &ssl_loss);
    if (!std::isfinite(loss) || !std::isfinite(ssl_loss)) throw_non_finite(loss, ssl_loss, epoch, s + 1, rate);
    allreduce_.reduce();
    result_.step_collectives += comm_.collective_calls() - calls_before;
    adam_.step();
    // Eq. 9: the batch's item embeddings (detached) and their log q join the bank, the oldest leave;
    // distributed, the global batch's, the same on every rank.
    if (config_.negatives == "cbns")
      bank_.enqueue(distributed ? global_.embeddings.data() : model_.item_tower().output(), log_q_.data(), batch_items.data(), batch_items.size());
    ++run_.step;
    if (run_.step == fail_at_step_) throw TrainingError("injected failure after step " + std::to_string(run_.step) + " (FUNNEL_FAIL_AT_STEP)");
    loss_sum += loss;
    ssl_loss_sum += ssl_loss;
    const auto embed_items = [this](std::span<const uint32_t> rows, float* out) {
      if (model_.item_tower().sharded()) model_.item_tower().fetch_rows(rows);  // collective: every rank probes alike
      const float* v = model_.item_tower().forward(rows);
      std::copy(v, v + rows.size() * model_.item_tower().output_dim(), out);
    };
    const std::vector<DriftRecord> probes =
        config_.drift_sample > 0 ? drift_.after_step(run_.step, config_.output_dim, embed_items) : std::vector<DriftRecord>{};
    record.drift.insert(record.drift.end(), probes.begin(), probes.end());
    if (config_.negatives == "cbns" && !run_.cbns_active) run_.maybe_start_cbns(config_, probes, observer_);
    return true;
  }

  // Trains one epoch, evaluates it and checkpoints; false when early stopping ends the run.
  bool train_epoch(uint32_t epoch) {
    Rng epoch_rng(0);
    start_epoch(epoch_rng);
    drift_.reset_probe();
    EpochRecord record;
    record.epoch = epoch;
    const auto start = Clock::now();
    double loss_sum = 0.0, ssl_loss_sum = 0.0;
    size_t batches = 0, read = 0;  // read: this reader's rows of the epoch so far
    float rate = config_.learning_rate;
    // Samples per second count every rank's rows: rank-local, each rank reads its own.
    const double samples_per_read = plan_.rank_local ? static_cast<double>(comm_.size()) : 1.0;
    for (size_t s = 0; s < plan_.steps; ++s) {
      if (!step(epoch, s, read, record, loss_sum, ssl_loss_sum, rate)) continue;
      ++batches;
      if (observer_.on_progress && (s % 16 == 0 || s + 1 == plan_.steps))
        observer_.on_progress(epoch, s + 1, plan_.steps, loss_sum / static_cast<double>(batches),
                              samples_per_read * static_cast<double>(read) / std::max(seconds_since(start), 1e-9));
    }
    const double seconds = seconds_since(start);
    train_seconds_ += seconds;
    samples_ += plan_.trained_rows;
    record.loss = loss_sum / static_cast<double>(std::max<size_t>(batches, 1));
    record.ssl_loss = ssl_loss_sum / static_cast<double>(std::max<size_t>(batches, 1));
    record.samples_per_second = static_cast<double>(plan_.trained_rows) / seconds;
    record.learning_rate = rate;
    return end_epoch(epoch, record);
  }

  // The epoch's end: validation on rank 0, the best epoch so far, the checkpoint, early stopping.
  bool end_epoch(uint32_t epoch, EpochRecord& record) {
    record.steps = run_.step;
    record.cbns_active = run_.cbns_active;
    const double score = evaluate_epoch(model_, data_, split_, config_, ks_, comm_, record);
    result_.history.push_back(record);
    run_.history.push_back(epoch_json(record, config_.drift_deltas));
    run_.finish_epoch(epoch, score, parameters_);
    // The checkpoint is written before anyone hears of the epoch: whatever happens next, it holds it.
    if (!options_.checkpoint.empty()) save_rank_checkpoint(comm_, state_, options_.checkpoint, epoch);
    if (observer_.on_epoch) observer_.on_epoch(record);
    result_.stopped_early = run_.patience_ran_out(config_, observer_);
    return !result_.stopped_early;
  }

  // The best epoch's parameters, tested and exported on rank 0.
  TrainResult finish() {
    // Before any epoch ran best_values are the initial values, as the parameters are.
    for (size_t i = 0; i < parameters_.size(); ++i) parameters_[i]->value = run_.best_values[i];
    TrainResult& result = result_;
    result.best_epoch = run_.best_epoch;
    result.train_interactions = plan_.trained_rows;
    result.cbns_start_step = run_.cbns_start_step;
    result.train_seconds = train_seconds_;
    result.samples_per_second = train_seconds_ > 0 ? static_cast<double>(samples_) / train_seconds_ : 0.0;
    result.steps = run_.step;
    result.exchange_bytes = model_.user_tower().bytes_sent() + model_.item_tower().bytes_sent();
    result.allreduce_bytes = allreduce_.bytes_reduced();
    result.dropped_rows = plan_.dropped_rows;
    model_.user_tower().gather_tables(0);
    model_.item_tower().gather_tables(0);
    if (comm_.rank() != 0) return result;
    result.test = evaluate_in_memory(export_two_tower(data_, model_, config_, {}), data_, split_, Holdout::kTest, ks_);
    result.popular_test = evaluate_most_popular(data_, split_, Holdout::kTest, ks_);
    result.model_file = export_two_tower(data_, model_, config_, run_metadata(data_, config_, result, run_, options_.metadata));
    return result;
  }
};

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
  omp_set_num_threads(config.threads > 0 ? static_cast<int>(config.threads) : omp_get_num_procs());
  flush_subnormals_to_zero();
  TwoTowerLoop loop(data, split, rows, config, options);
  return loop.run();
}

}  // namespace funnel::train
