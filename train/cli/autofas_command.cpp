// `funnel autofas`: train the ranking teacher, search the pre-ranking student on it (AutoFAS), retrain the
// student with distillation (pre_ranking/autofas_training.hpp), and write one file with both stages; then
// measure what the student keeps of the teacher's choices, through the SDK.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "train/cli/cli_support.hpp"
#include "train/cli/progress.hpp"
#include "train/core/atomic_file.hpp"
#include "train/core/errors.hpp"
#include "train/data/ctr_data.hpp"
#include "train/data/ctr_stream.hpp"
#include "train/data/split.hpp"
#include "train/distributed/communicator.hpp"
#include "train/pre_ranking/autofas_training.hpp"
#include "train/pre_ranking/stage_agreement.hpp"
#include "train/retrieval/two_tower_training.hpp"

namespace funnel::train::cli {

using json = nlohmann::json;

namespace {

AutoFasConfig effective_autofas_config(const TrainArgs& args) {
  return autofas_config_from_json(
      apply_overrides(autofas_config_to_json(args.config.empty() ? AutoFasConfig{} : autofas_config_from_json(parse_config_file(args.config), args.config)),
                      args),
      config_source(args));
}

}  // namespace

int run_autofas(const TrainArgs& args) {
  // The teacher, search and student are one process's work (docs/distributed.md): under mpirun every rank
  // would run them all and write the same files.
  if (world().distributed())
    throw ConfigError("autofas is not data-parallel: run it without mpirun (train-ranker is: mpirun -np N funnel train-ranker ...)");
  const auto start = std::chrono::steady_clock::now();
  const AutoFasConfig config = effective_autofas_config(args);
  if (config.latency_table.empty())
    throw ConfigError("autofas needs latency_table: measure it on the deployment target with `funnel bench-layers --out latency.json` "
                      "(or wasm/tools/bench_layers.mjs for WASM) and pass --set latency_table=latency.json");
  const LatencyTable table = LatencyTable::load(config.latency_table);
  const CtrDataset ctr = load_ctr_dataset(args.data, args.data_root, config.teacher.ctr_options(), args.shuffle_buffer);
  if (ctr.streamed && config.two_tower_epochs > 0)
    throw ConfigError(args.data + ": a prepared folder; the two-tower baseline (two_tower_epochs) reads the dataset description");
  const CtrInstances& in = ctr.instances;
  spdlog::info("dataset '{}': {} users, {} items; instances train {}{} / validation {} / test {}", ctr.data.name, ctr.data.users.size(),
               ctr.data.items.size(), train_instance_count(ctr), ctr.streamed ? " (streamed)" : "", in.validation.size(), in.test.size());
  spdlog::info("latency table: {} ({} candidates per measurement)", table.target(), table.candidates());

  MetricsLog metrics_log(args.metrics_log);
  AutoFasObservers observers;
  observers.training = [&metrics_log](const std::string& what, uint32_t epochs) { return ranking_progress(what, epochs, &metrics_log); };
  observers.search = search_progress(config.search_epochs);
  AutoFasCheckpoints checkpoints;
  checkpoints.checkpoint = args.checkpoint;
  checkpoints.resume = args.resume;
  checkpoints.on_note = [](const std::string& note) {
    if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r\033[K");
    spdlog::info("{}", note);
  };
  const AutoFasResult run = train_autofas(ctr, config, table, observers, {}, checkpoints);
  if (isatty(STDERR_FILENO)) std::fprintf(stderr, "\r\033[K");
  log_autofas_run(run, config, table);
  const std::vector<uint8_t>& bytes = run.model_file;
  write_file_atomically(args.out, bytes);
  const AutoFasSearch& search = run.search;
  const RankerConfig& student = run.student_config;
  const RankerResult& teacher_result = run.teacher;
  const RankerResult& student_result = run.student;
  const json search_json = search.to_json(config, table);

  // 5. The two-tower baseline, when asked for: the retrieval trainer on the same data.
  std::unique_ptr<Model> two_tower;
  if (config.two_tower_epochs > 0) {
    TrainConfig two_tower_config;
    two_tower_config.epochs = config.two_tower_epochs;
    two_tower_config.seed = config.teacher.seed;
    two_tower_config.threads = config.teacher.threads;
    const TrainResult trained = train_two_tower(ctr.data, leave_last_out(ctr.data), two_tower_config);
    if (Status s = Model::load_bytes(trained.model_file.data(), trained.model_file.size(), &two_tower); !s)
      throw TrainingError("the two-tower model does not load: " + s.to_string());
    spdlog::info("two-tower baseline: {} epochs, test {}", config.two_tower_epochs, trained.test.summary());
  }

  // 6. What the funnel gains, measured through the SDK on the file just written.
  std::unique_ptr<Model> model;
  if (Status s = Model::load_bytes(bytes.data(), bytes.size(), &model); !s) throw TrainingError("the exported model does not load: " + s.to_string());
  const StageAgreement agreement = measure_stage_agreement(*model, ctr, 500, 1000, config.teacher.seed, {10, 50, 100}, two_tower.get());
  const auto recalls = [&](const std::vector<double>& r) {
    std::string text;
    for (size_t k = 0; k < agreement.ks.size(); ++k) text += fmt::format("  top-{} {:.3f}", agreement.ks[k], r[k]);
    return text;
  };
  spdlog::info("over {} test requests of {} candidates, the student keeps of the teacher's top 10:{}", agreement.requests,
               agreement.candidates, recalls(agreement.recall_of_top10));
  spdlog::info("SDK time per 1,000 candidates here: pre-ranking {:.0f} us, ranking {:.0f} us ({:.1f}%)", agreement.pre_ranking_us,
               agreement.ranking_us, 100.0 * agreement.pre_ranking_us / agreement.ranking_us);
  if (two_tower)
    spdlog::info("two-tower baseline keeps:{}; {:.0f} us per 1,000 candidates", recalls(agreement.two_tower_recall_of_top10),
                 agreement.two_tower_us);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("wrote {} ({} bytes) in {}", args.out, bytes.size(), format_seconds(total));
  if (!args.report.empty()) {
    const json report = {{"dataset", ctr.data.name},
                         {"config", autofas_config_to_json(config)},
                         {"teacher", {{"test", ctr_metrics_json(teacher_result.test)}}},
                         {"student", {{"test", ctr_metrics_json(student_result.test)}, {"validation", ctr_metrics_json(student_result.validation)},
                                      {"config", ranker_config_to_json(student)}}},
                         {"search", search_json},
                         {"agreement", {{"requests", agreement.requests}, {"candidates", agreement.candidates}, {"ks", agreement.ks},
                                        {"recall_of_top10", agreement.recall_of_top10}}},
                         {"sdk_us_per_1000", {{"pre_ranking", agreement.pre_ranking_us}, {"ranking", agreement.ranking_us}}},
                         {"two_tower", two_tower ? json{{"recall_of_top10", agreement.two_tower_recall_of_top10}, {"us_per_1000", agreement.two_tower_us}}
                                                 : json(nullptr)},
                         {"total_seconds", total}};
    write_file_atomically(args.report, report.dump(2) + "\n");
  }
  return 0;
}

}  // namespace funnel::train::cli
