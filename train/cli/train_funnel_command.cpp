// `funnel train-funnel`: the whole funnel from one dataset in one file (pipeline/funnel_training.hpp), then
// what each stage adds to the final top 10 on the test split, through the SDK (pipeline/cascade_evaluation.hpp).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "train/cli/cli_support.hpp"
#include "train/cli/progress.hpp"
#include "train/core/atomic_file.hpp"
#include "train/data/split.hpp"
#include "train/pipeline/cascade_evaluation.hpp"
#include "train/pipeline/funnel_training.hpp"

namespace funnel::train::cli {

namespace {

using json = nlohmann::json;

// The config file (or the defaults), then --set section.key=value, then the shortcut flags, which reach
// every stage they mean something to (--epochs: retrieval, ranking and the pre-ranking student).
FunnelConfig effective_funnel_config(const TrainArgs& args) {
  json object = funnel_config_to_json(args.config.empty() ? FunnelConfig{} : funnel_config_from_json(parse_config_file(args.config), args.config));
  TrainArgs sets = args;
  sets.epochs.reset();
  sets.batch_size.reset();
  sets.seed.reset();
  sets.threads.reset();
  object = apply_overrides(std::move(object), sets);
  if (args.epochs) {
    object["retrieval"]["epochs"] = *args.epochs;
    object["ranking"]["epochs"] = *args.epochs;
    object["pre_ranking"]["student_epochs"] = *args.epochs;
  }
  for (const char* section : {"retrieval", "ranking"}) {
    if (args.batch_size) object[section]["batch_size"] = *args.batch_size;
    if (args.seed) object[section]["seed"] = *args.seed;
    if (args.threads) object[section]["threads"] = *args.threads;
  }
  return funnel_config_from_json(object, config_source(args));
}

void print_cascade(const std::vector<CascadeRow>& rows) {
  spdlog::info("test, final top {} through the SDK ({} users):", rows.front().k, rows.front().users);
  for (const CascadeRow& r : rows)
    spdlog::info("  {:<30} K1 {:>5} K2 {:>4}  Recall {:.4f}  NDCG {:.4f}  ms/request: retrieval {:.3f} pre-ranking {:.3f} ranking {:.3f}",
                 r.stages, r.retrieve_k ? std::to_string(r.retrieve_k) : "-", r.prerank_k ? std::to_string(r.prerank_k) : "-", r.recall,
                 r.ndcg, r.retrieval_ms, r.pre_ranking_ms, r.ranking_ms);
}

}  // namespace

int run_train_funnel(const TrainArgs& args, const std::string& work_dir, bool resume) {
  require_description(args, "train-funnel");
  const auto start = std::chrono::steady_clock::now();
  const FunnelConfig config = effective_funnel_config(args);
  MetricsLog metrics_log(args.metrics_log);
  FunnelTrainingOptions options;
  options.work_dir = work_dir.empty() ? args.out + ".stages" : work_dir;
  options.resume = resume;
  options.retrieval = retrieval_progress(config.retrieval, &metrics_log);
  options.pre_ranking.training = [&metrics_log](const std::string& what, uint32_t epochs) {
    return ranking_progress(what == "teacher" ? "ranking" : "pre-ranking student", epochs, &metrics_log);
  };
  options.pre_ranking.search = search_progress(config.pre_ranking.search_epochs);
  const bool tty = isatty(STDERR_FILENO);
  options.on_note = [tty](const std::string& note) {
    if (tty) std::fprintf(stderr, "\r\033[K");
    spdlog::info("{}", note);
  };
  const Dataset data = load_dataset(args.data, args.data_root);
  const FunnelTrainingResult run = train_funnel(data, config, options);
  if (tty) std::fprintf(stderr, "\r\033[K");
  if (run.retrieval) {
    spdlog::info("retrieval: best epoch {}; test {}", run.retrieval->best_epoch, run.retrieval->test.summary());
    spdlog::info("           most popular {}", run.retrieval->popular_test.summary());
  }
  if (run.pre_ranking) log_autofas_run(*run.pre_ranking, run.pre_ranking_config, LatencyTable::load(run.latency_table));
  write_file_atomically(args.out, run.model_file);

  std::unique_ptr<Model> model;
  if (Status s = Model::load_bytes(run.model_file.data(), run.model_file.size(), &model); !s) throw std::runtime_error(s.to_string());
  CascadeGrid grid;
  grid.retrieve_k = {200};
  grid.prerank_k = {50};
  grid.threads = config.retrieval.threads;
  const std::vector<CascadeRow> rows = evaluate_cascade(*model, data, leave_last_out(data), Holdout::kTest, grid);
  print_cascade(rows);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("wrote {} ({} bytes: retrieval, pre-ranking, ranking) in {}; stage files in {}", args.out, run.model_file.size(),
               format_seconds(total), options.work_dir);
  if (!args.report.empty()) {
    json cascade = json::array();
    for (const CascadeRow& r : rows) cascade.push_back(r.to_json());
    json report = {{"config", funnel_config_to_json(config)}, {"cascade", cascade}, {"total_seconds", total}};
    if (run.retrieval) report["retrieval"] = {{"test", run.retrieval->test.to_json()}, {"best_epoch", run.retrieval->best_epoch}};
    if (run.pre_ranking)
      report["ranking"] = {{"test", ctr_metrics_json(run.pre_ranking->teacher.test)},
                           {"pre_ranking_test", ctr_metrics_json(run.pre_ranking->student.test)}};
    write_file_atomically(args.report, report.dump(2) + "\n");
  }
  return 0;
}

}  // namespace funnel::train::cli
