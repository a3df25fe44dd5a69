// The verbs that train or evaluate: generate, train, train-ranker, autofas (autofas_command.cpp), train-funnel
// (train_funnel_command.cpp), eval.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "funnel/funnel.hpp"
#include "train/cli/cli_support.hpp"
#include "train/cli/commands.hpp"
#include "train/cli/progress.hpp"
#include "train/core/atomic_file.hpp"
#include "train/core/errors.hpp"
#include "train/data/ctr_data.hpp"
#include "train/data/dataset.hpp"
#include "train/data/interaction_stream.hpp"
#include "train/data/ctr_stream.hpp"
#include "train/data/prepared.hpp"
#include "train/data/split.hpp"
#include "train/data/synthetic.hpp"
#include "train/distributed/communicator.hpp"
#include "train/export/export.hpp"
#include "train/pipeline/cascade_evaluation.hpp"
#include "train/pre_ranking/autofas_training.hpp"
#include "train/ranking/ranker_training.hpp"
#include "train/retrieval/evaluation.hpp"
#include "train/retrieval/two_tower_config.hpp"
#include "train/retrieval/two_tower_training.hpp"

namespace funnel::train::cli {

namespace {

using json = nlohmann::json;

// ---- generate ----------------------------------------------------------------------------------------
int run_generate(const std::string& out, const SyntheticOptions& options) {
  const std::string path = write_synthetic_dataset(out, options);
  spdlog::info("wrote the synthetic dataset ({} users, {} items) to {}", options.users, options.items, path);
  return 0;
}

// ---- train -------------------------------------------------------------------------------------------
TrainConfig effective_config(const TrainArgs& args) {
  return config_from_json(apply_overrides(config_to_json(args.config.empty() ? TrainConfig{} : load_config(args.config)), args),
                          config_source(args));
}

int run_train(const TrainArgs& args) {
  const TrainConfig config = effective_config(args);
  // Under mpirun every rank trains its part; rank 0 alone reports and writes the model (docs/distributed.md).
  Communicator& comm = world();
  if (comm.rank() != 0) spdlog::set_level(spdlog::level::off);
  if (comm.distributed())
    spdlog::info("{} ranks: global batch {} ({} per rank), embedding tables {}", comm.size(),
                 static_cast<size_t>(config.batch_size) * static_cast<size_t>(comm.size()), config.batch_size,
                 config.embedding_sharding == "sharded" ? "sharded by row" : "replicated");

  const auto start = std::chrono::steady_clock::now();
  // A prepared folder streams its shards through a shuffle buffer; a description is read into memory.
  const bool streaming = is_prepared_dataset(args.data);
  if (streaming && config.train_fraction < 1.0f)
    throw ConfigError(args.data + ": train_fraction below 1 needs the dataset description (it subsamples in memory), not a prepared folder");
  // Under mpirun each rank opens and reads only its own shards (i % ranks == rank).
  const uint32_t rank = static_cast<uint32_t>(comm.rank()), ranks = static_cast<uint32_t>(comm.size());
  const PreparedDataset prepared = streaming ? open_prepared(args.data, rank, ranks) : PreparedDataset{};
  const Dataset loaded = streaming ? Dataset{} : load_dataset(args.data, args.data_root);
  const Dataset& data = streaming ? prepared.data : loaded;
  const Split in_memory_split = streaming ? Split{} : leave_last_out(data);
  const Split& split = streaming ? prepared.split : in_memory_split;
  spdlog::info("dataset '{}': {} users, {} items, {} interactions ({} for training{})", data.name, data.users.size(), data.items.size(),
               streaming ? prepared.interactions : data.interactions.size(), streaming ? prepared.train_rows : split.train.size(),
               streaming ? ", streamed from " + std::to_string(prepared.shards.size()) + " shards through a shuffle buffer of " +
                               std::to_string(config.shuffle_buffer) + " rows"
                         : std::string());

  MetricsLog metrics_log(comm.rank() == 0 ? args.metrics_log : "");
  TrainOptions options;
  options.communicator = &comm;
  options.checkpoint = args.checkpoint;
  options.resume = args.resume;
  options.observer = retrieval_progress(config, &metrics_log);

  if (config.train_fraction < 1.0f)
    spdlog::info("training on a {:.0f}% sample of the training interactions (train_fraction)", 100.0 * config.train_fraction);
  // Under mpirun a prepared folder's rows are split by shard, each rank trains on its own; a description is read
  // whole by every rank, which takes its part of each global batch (docs/distributed.md).
  std::unique_ptr<ShuffledShards> shards =
      streaming ? std::make_unique<ShuffledShards>(prepared, config.shuffle_buffer, rank, ranks) : nullptr;
  const TrainResult result = streaming ? train_two_tower(data, split, *shards, config, options) : train_two_tower(data, split, config, options);
  if (comm.rank() != 0) return 0;
  write_file_atomically(args.out, result.model_file);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("best epoch {} (validation Recall@{}){}; training {:.0f} samples/s", result.best_epoch, config.select_k,
               result.stopped_early ? ", stopped early" : "", result.samples_per_second);
  spdlog::info("test  model        {}", result.test.summary());
  spdlog::info("test  most popular {}", result.popular_test.summary());
  spdlog::info("wrote {} ({} bytes) in {}", args.out, result.model_file.size(), format_seconds(total));
  if (!args.report.empty()) {
    std::vector<json> validation;
    for (const EpochRecord& r : result.history) validation.push_back(r.validation.to_json());
    const json report = {{"dataset", data.name},
                         {"config", config_to_json(config)},
                         {"best_epoch", result.best_epoch},
                         {"stopped_early", result.stopped_early},
                         {"cbns_start_step", result.cbns_start_step},
                         {"test", result.test.to_json()},
                         {"most_popular_test", result.popular_test.to_json()},
                         {"per_epoch_validation", validation},
                         {"train_interactions", result.train_interactions},
                         {"train_samples", static_cast<double>(result.train_interactions) * static_cast<double>(result.history.size())},
                         {"train_seconds", result.train_seconds},
                         {"samples_per_second", result.samples_per_second},
                         {"total_seconds", total},
                         {"ranks", comm.size()},
                         {"steps", result.steps},
                         // ranks on their own shards: rows past the smallest rank's count, dropped each epoch (0 otherwise)
                         {"dropped_rows_per_epoch", result.dropped_rows},
                         // rank 0's, per optimiser step: the row exchange's bytes to other ranks and the replicated gradients' all-reduce payload
                         {"exchange_bytes_per_step", result.steps ? static_cast<double>(result.exchange_bytes) / static_cast<double>(result.steps) : 0.0},
                         {"allreduce_bytes_per_step", result.steps ? static_cast<double>(result.allreduce_bytes) / static_cast<double>(result.steps) : 0.0}};
    write_file_atomically(args.report, report.dump(2) + "\n");
  }
  return 0;
}

// ---- train-ranker ------------------------------------------------------------------------------------
int run_train_ranker(const TrainArgs& args) {
  const RankerConfig config = ranker_config_from_json(
      apply_overrides(ranker_config_to_json(args.config.empty() ? RankerConfig{} : load_ranker_config(args.config)), args),
      config_source(args));
  // Under mpirun every rank trains its part of each global batch (docs/distributed.md); rank 0 reports and
  // writes the files.
  Communicator& comm = world();
  const bool root = comm.rank() == 0;
  const auto start = std::chrono::steady_clock::now();
  // Under mpirun with a prepared folder each rank opens only its own CTR shards.
  const CtrDataset ctr = load_ctr_dataset(args.data, args.data_root, config.ctr_options(), args.shuffle_buffer, static_cast<uint32_t>(comm.rank()),
                                          static_cast<uint32_t>(comm.size()));
  const CtrInstances& in = ctr.instances;
  if (root)
    spdlog::info("dataset '{}': {} users, {} items; instances train {}{} / validation {} / test {} ({} negative{} per positive){}", ctr.data.name,
                 ctr.data.users.size(), ctr.data.items.size(), train_instance_count(ctr),
                 ctr.streamed ? fmt::format(" (streamed from {} shards through a shuffle buffer of {} rows)", ctr.streamed->shards.size(),
                                            ctr.streamed->shuffle_buffer)
                              : "",
                 in.validation.size(), in.test.size(), config.negatives, config.negatives == 1 ? "" : "s",
                 comm.distributed() ? fmt::format("; {} ranks, global batch {}", comm.size(), size_t{config.batch_size} * comm.size()) : "");

  MetricsLog metrics_log(root ? args.metrics_log : "");
  const RankerObserver observer = root ? ranking_progress("", config.epochs, &metrics_log) : RankerObserver{};

  RankerCheckpoints checkpoints;
  checkpoints.checkpoint = args.checkpoint;
  checkpoints.resume = args.resume;
  checkpoints.on_note = [root](const std::string& note) {
    if (root) spdlog::info("{}", note);
  };
  const RankerResult result = train_ranker(ctr, config, observer, {}, nullptr, checkpoints, comm);
  if (!root) return 0;
  write_file_atomically(args.out, result.model_file);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("{} with {} parameters; chosen epoch {} ({}); training {:.0f} samples/s", config.model, result.parameters,
               result.best_epoch, in.validation.size() ? "best validation AUC" : "no validation split: the last", result.samples_per_second);
  spdlog::info("test  {}", ctr_summary(result.test));
  if (result.exchange_bytes_per_step > 0)
    spdlog::info("rank 0 sent {:.0f} bytes per step through the tables' row exchange", result.exchange_bytes_per_step);
  spdlog::info("wrote {} ({} bytes) in {}", args.out, result.model_file.size(), format_seconds(total));
  if (!args.report.empty()) {
    json epochs = json::array();
    for (const RankerEpoch& r : result.history)
      epochs.push_back({{"epoch", r.epoch}, {"loss", r.loss}, {"train_seconds", r.train_seconds}, {"validation", ctr_metrics_json(r.validation)},
                        {"test", ctr_metrics_json(r.test)}});
    const json report = {{"dataset", ctr.data.name},
                         {"config", ranker_config_to_json(config)},
                         {"parameters", result.parameters},
                         {"instances", {{"train", train_instance_count(ctr)}, {"validation", in.validation.size()}, {"test", in.test.size()}}},
                         {"streamed", ctr.streamed != nullptr},
                         {"best_epoch", result.best_epoch},
                         {"validation", ctr_metrics_json(result.validation)},
                         {"test", ctr_metrics_json(result.test)},
                         {"per_epoch", epochs},
                         {"train_samples", result.train_samples},
                         {"train_seconds", result.train_seconds},
                         {"samples_per_second", result.samples_per_second},
                         {"threads", config.threads},
                         {"ranks", comm.size()},
                         {"exchange_bytes_per_step_rank0", result.exchange_bytes_per_step},
                         {"total_seconds", total}};
    write_file_atomically(args.report, report.dump(2) + "\n");
  }
  return 0;
}

// ---- eval --------------------------------------------------------------------------------------------
struct EvalArgs {
  std::string data, root, model;
  CascadeGrid grid;
  std::string requests_out;
  bool json = false;
  bool no_verify = false;
};

int run_eval(const EvalArgs& args) {
  const auto model = open_model(args.model, !args.no_verify);
  const Dataset data = load_dataset(args.data, args.root);
  const Split split = leave_last_out(data);
  if (!model->has_retrieval()) throw std::runtime_error(args.model + ": the model has no retrieval stage");
  // Raw features through the SDK's own encoder: the path an application takes.
  std::vector<int64_t> catalogue_index(data.items.size());
  for (size_t i = 0; i < data.items.size(); ++i) catalogue_index[i] = model->find_item(data.items.keys[i]);
  const std::vector<uint32_t> ks = {10, 50};
  // Called from every evaluation thread at once: each call has its own query and scores.
  const auto scorer = [&](uint32_t user, float* scores) {
    std::vector<float> query, catalogue_scores(model->catalogue_size());
    if (Status s = model->user_embedding(data.users.raw[user], &query); !s)
      throw DataError("user '" + data.users.keys[user] + "': " + s.to_string());
    model->score_catalogue(query.data(), catalogue_scores.data());
    for (size_t i = 0; i < data.items.size(); ++i)
      scores[i] = catalogue_index[i] >= 0 ? catalogue_scores[static_cast<size_t>(catalogue_index[i])] : -INFINITY;
  };
  const RetrievalMetrics metrics = evaluate_ranking(data, split, Holdout::kTest, ks, scorer);
  const RetrievalMetrics popular = evaluate_most_popular(data, split, Holdout::kTest, ks);
  // With ranking stages: what each adds to the final list.
  if (!args.requests_out.empty()) {
    write_file_atomically(args.requests_out, cascade_requests_jsonl(data, split, Holdout::kTest));
  }
  std::vector<CascadeRow> cascade;
  if (model->has_ranking() || model->has_pre_ranking()) cascade = evaluate_cascade(*model, data, split, Holdout::kTest, args.grid);
  if (args.json) {
    json out = {{"model", metrics.to_json()}, {"most_popular", popular.to_json()}};
    if (!cascade.empty()) {
      out["cascade"] = json::array();
      for (const CascadeRow& row : cascade) out["cascade"].push_back(row.to_json());
    }
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::cout << "test users      " << metrics.users << " (one held-out item each: HitRate@K equals Recall@K)\n";
  std::cout << "model           " << metrics.summary() << "\n";
  std::cout << "most popular    " << popular.summary() << "\n";
  if (cascade.empty()) return 0;
  std::printf("\nthe final top %u through the cascade (ms per request, mean over %zu users)\n", args.grid.k, cascade.front().users);
  std::printf("%-30s %6s %5s  %8s %8s  %9s %11s %8s %8s\n", "stages", "K1", "K2", "Recall", "NDCG", "retrieval", "pre-ranking", "ranking",
              "total");
  for (const CascadeRow& r : cascade)
    std::printf("%-30s %6s %5s  %8.4f %8.4f  %9.3f %11.3f %8.3f %8.3f\n", r.stages.c_str(),
                r.retrieve_k ? std::to_string(r.retrieve_k).c_str() : "-", r.prerank_k ? std::to_string(r.prerank_k).c_str() : "-",
                r.recall, r.ndcg, r.retrieval_ms, r.pre_ranking_ms, r.ranking_ms, r.total_ms);
  return 0;
}

class TrainingCommands final : public CommandFamily {
 public:
  explicit TrainingCommands(CLI::App& app) {
    generate = app.add_subcommand("generate", "write the built-in synthetic dataset (CSV files + dataset.json)");
    generate->add_option("--out", out_dir, "output folder")->required();
    generate->add_option("--users", synthetic.users, "number of users")->capture_default_str();
    generate->add_option("--items", synthetic.items, "number of items")->capture_default_str();
    generate->add_option("--seed", synthetic.seed, "random seed")->capture_default_str();
    generate->add_option("--mean-interactions", synthetic.mean_interactions,
                         "mean interactions per user (at least 5; each user takes at most half the catalogue)")
        ->capture_default_str();
    generate->add_option("--categories", synthetic.categories, "number of item categories")->capture_default_str();
    generate->add_option("--pairing", synthetic.pairing,
                         "share of interactions that follow a hidden pairing of the previous item's category with the next one's "
                         "(a behaviour x candidate signal for co-action); 0 leaves the data as it always was")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 1.0));
    train_cmd = app.add_subcommand("train", "train a two-tower retrieval model and export a .funnel file");
    add_training_options(train_cmd, train, "training config", "negatives=cbns");
    add_checkpoint_options(train_cmd, train);
    ranker_cmd = app.add_subcommand("train-ranker", "train a CTR ranking model (DNN or CAN) and export a .funnel file");
    add_training_options(ranker_cmd, ranker, "ranking config", "model=dnn");
    add_checkpoint_options(ranker_cmd, ranker);
    add_ctr_stream_option(ranker_cmd, ranker);
    autofas_cmd = app.add_subcommand("autofas", "train a ranking teacher, search its pre-ranking student with AutoFAS on a measured "
                                                      "latency table, retrain the student, and export both stages in one file");
    add_training_options(autofas_cmd, autofas, "AutoFAS config (the teacher's ranking fields and the search's)",
                         "latency_table=latency.json");
    add_checkpoint_options(autofas_cmd, autofas);
    add_ctr_stream_option(autofas_cmd, autofas);
    funnel_cmd = app.add_subcommand("train-funnel", "train retrieval (two-tower), ranking (CAN) and the AutoFAS pre-ranking student on one "
                                                    "split of a dataset and write the three stages in one file");
    add_training_options(funnel_cmd, funnel, "funnel config: sections retrieval, ranking, pre_ranking",
                         "ranking.epochs=2 (--epochs sets every stage's)");
    funnel_cmd->add_option("--work", funnel_work, "folder for the stage files, checkpoints and the latency table (default: <out>.stages)");
    funnel_cmd->add_flag("--resume", funnel_resume, "reuse what a stopped run of the same config left in the work folder");
    eval = app.add_subcommand("eval", "evaluate a model file on a dataset's test split (through the SDK): Recall@K, NDCG@K, HitRate@K "
                                      "(equal to Recall@K: one held-out item per user), MRR, coverage, tail recall; with ranking stages, "
                                      "the final top k of retrieval alone, + ranking, + pre-ranking and ranking, over a grid of K1 and K2");
    eval->add_option("--data", eval_args.data, "dataset description (JSON)")->required()->check(CLI::ExistingFile);
    eval->add_option("--data-root", eval_args.root, "folder the description's file paths are relative to");
    eval->add_option("--model", eval_args.model, "model file")->required();
    eval->add_option("-k,--k", eval_args.grid.k, "the final list's length")->capture_default_str();
    eval->add_option("--retrieve-k", eval_args.grid.retrieve_k, "K1: candidates retrieval passes on")->delimiter(',')->capture_default_str();
    eval->add_option("--prerank-k", eval_args.grid.prerank_k, "K2: candidates pre-ranking passes to ranking")->delimiter(',')->capture_default_str();
    eval->add_option("--threads", eval_args.grid.threads, "users scored at once (0: every core)")->capture_default_str();
    eval->add_option("--requests-out", eval_args.requests_out,
                     "write the evaluated requests as JSON lines, to replay them elsewhere (wasm/tools/eval_cascade.mjs)");
    eval->add_flag("--json", eval_args.json, "print JSON");
    add_no_verify_flag(eval, eval_args.no_verify);
  }

  std::optional<int> run() override {
    if (*generate) return run_generate(out_dir, synthetic);
    if (*train_cmd) return run_train(train);
    if (*ranker_cmd) return run_train_ranker(ranker);
    if (*autofas_cmd) return run_autofas(autofas);
    if (*funnel_cmd) return run_train_funnel(funnel, funnel_work, funnel_resume);
    if (*eval) return run_eval(eval_args);
    return std::nullopt;
  }

 private:
  std::string out_dir;
  SyntheticOptions synthetic;
  CLI::App* generate = nullptr;
  TrainArgs train;
  CLI::App* train_cmd = nullptr;
  TrainArgs ranker;
  CLI::App* ranker_cmd = nullptr;
  TrainArgs autofas;
  CLI::App* autofas_cmd = nullptr;
  TrainArgs funnel;
  std::string funnel_work;
  bool funnel_resume = false;
  CLI::App* funnel_cmd = nullptr;
  EvalArgs eval_args;
  CLI::App* eval = nullptr;
};

}  // namespace

std::unique_ptr<CommandFamily> add_training_commands(CLI::App& app) { return std::make_unique<TrainingCommands>(app); }

}  // namespace funnel::train::cli
