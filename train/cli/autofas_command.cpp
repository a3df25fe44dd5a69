// `funnel autofas`: train the ranking teacher, search the pre-ranking student on it (AutoFAS), retrain the
// student with distillation, and write one file with both stages.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "train/pre_ranking/autofas.hpp"
#include "train/pre_ranking/distillation.hpp"
#include "train/cli/cli_support.hpp"
#include "train/data/ctr_data.hpp"
#include "train/core/errors.hpp"
#include "train/core/atomic_file.hpp"
#include "train/export/export.hpp"
#include "train/ranking/ranker_training.hpp"
#include "train/ranking/ranker_model.hpp"
#include "train/data/split.hpp"
#include "train/pre_ranking/stage_agreement.hpp"
#include "train/retrieval/two_tower_training.hpp"

namespace funnel::train::cli {

namespace {

using json = nlohmann::json;

json metrics_json(const CtrMetrics& m) { return {{"auc", m.auc}, {"gauc", m.gauc}, {"logloss", m.logloss}, {"instances", m.instances}}; }

std::string summary(const CtrMetrics& m) { return fmt::format("AUC {:.4f}  GAUC {:.4f}  LogLoss {:.4f}", m.auc, m.gauc, m.logloss); }

// The progress line and the per-epoch log of one training run (the teacher's or the student's).
RankerObserver progress(const std::string& what, uint32_t epochs) {
  RankerObserver observer;
  const bool tty = isatty(STDERR_FILENO);
  auto start = std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::now());
  observer.on_progress = [=](uint32_t epoch, size_t step, size_t steps, double loss, double rate) {
    if (!tty) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - *start).count();
    const double eta = elapsed / static_cast<double>(step) * static_cast<double>(steps * (epochs - epoch + 1) - step);
    std::fprintf(stderr, "\r%s epoch %u/%u  step %zu/%zu  loss %.4f  %.0f samples/s  ETA %s   ", what.c_str(), epoch, epochs, step, steps,
                 loss, rate, format_seconds(eta).c_str());
    std::fflush(stderr);
  };
  observer.on_epoch = [=](const RankerEpoch& r) {
    if (tty) std::fprintf(stderr, "\r\033[K");
    spdlog::info("{} epoch {}/{}  loss {:.4f}  {:.0f} samples/s", what, r.epoch, epochs, r.loss, r.samples_per_second);
    if (r.validation.instances) spdlog::info("    validation {}", summary(r.validation));
    spdlog::info("    test       {}", summary(r.test));
    *start = std::chrono::steady_clock::now();
  };
  return observer;
}

// The trained teacher's click probability for every training instance: the student's distillation target.
std::vector<float> teacher_probabilities(RankerModel& teacher, const CtrInstances& instances, uint32_t batch_size) {
  const CtrSplit& train = instances.train;
  std::vector<float> out(train.size());
  std::vector<uint32_t> batch;
  for (size_t begin = 0; begin < train.size(); begin += batch_size) {
    const size_t end = std::min(train.size(), begin + batch_size);
    batch.resize(end - begin);
    for (size_t k = 0; k < batch.size(); ++k) batch[k] = static_cast<uint32_t>(begin + k);
    teacher.forward(instances, train, batch, out.data() + begin);
  }
  for (float& p : out) p = 1.0f / (1.0f + std::exp(-p));
  return out;
}

// The teacher cache: one JSON line (the teacher's config and test metrics), then every parameter's floats.
void save_teacher(const std::string& path, RankerModel& teacher, const RankerConfig& config, const CtrMetrics& test) {
  std::string bytes = json{{"ranking_config", ranker_config_to_json(config)}, {"test", metrics_json(test)}}.dump() + "\n";
  for (const Parameter* p : teacher.parameters())
    bytes.append(reinterpret_cast<const char*>(p->value.data()), p->value.size() * sizeof(float));
  write_file_atomically(path, std::vector<uint8_t>(bytes.begin(), bytes.end()));
}

// Fills `teacher` from the cache; false when the cache holds another config's teacher.
bool load_teacher(const std::string& path, RankerModel& teacher, const RankerConfig& config, CtrMetrics* test) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open the teacher cache");
  std::string header;
  std::getline(in, header);
  json meta;
  try {
    meta = json::parse(header);
  } catch (const json::parse_error& e) {
    throw DataError(path + ": not a teacher cache (" + e.what() + ")");
  }
  if (meta.at("ranking_config") != ranker_config_to_json(config)) return false;
  for (Parameter* p : teacher.parameters())
    if (!in.read(reinterpret_cast<char*>(p->value.data()), static_cast<std::streamsize>(p->value.size() * sizeof(float))))
      throw DataError(path + ": the teacher cache ends before parameter '" + p->name + "'");
  if (in.peek() != std::char_traits<char>::eof()) throw DataError(path + ": the teacher cache holds more than the teacher's parameters");
  const json& m = meta.at("test");
  test->auc = m.at("auc");
  test->gauc = m.at("gauc");
  test->logloss = m.at("logloss");
  test->instances = m.at("instances");
  return true;
}

}  // namespace

int run_autofas(const TrainArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  const AutoFasConfig config = autofas_config_from_json(
      apply_overrides(autofas_config_to_json(args.config.empty() ? AutoFasConfig{} : autofas_config_from_json(parse_config_file(args.config), args.config)),
                      args),
      config_source(args));
  if (config.latency_table.empty())
    throw ConfigError("autofas needs latency_table: measure it on the deployment target with `funnel bench-layers --out latency.json` "
                      "(or wasm/tools/bench_layers.mjs for WASM) and pass --set latency_table=latency.json");
  const LatencyTable table = LatencyTable::load(config.latency_table);
  const CtrDataset ctr = load_ctr_dataset(args.data, args.data_root, config.teacher.ctr_options());
  const CtrInstances& in = ctr.instances;
  spdlog::info("dataset '{}': {} users, {} items; instances train {} / validation {} / test {}", ctr.data.name, ctr.data.users.size(),
               ctr.data.items.size(), in.train.size(), in.validation.size(), in.test.size());
  spdlog::info("latency table: {} ({} candidates per measurement)", table.target(), table.candidates());

  // 1. The teacher: the ranking stage, trained first (or read from the cache), frozen during the search.
  std::unique_ptr<RankerModel> teacher;
  RankerResult teacher_result;
  if (!config.teacher_cache.empty() && std::ifstream(config.teacher_cache).good()) {
    teacher = std::make_unique<RankerModel>(ctr.data, config.teacher);
    if (!load_teacher(config.teacher_cache, *teacher, config.teacher, &teacher_result.test))
      throw ConfigError(config.teacher_cache + ": the cached teacher was trained with another ranking config; remove the file or name another");
    spdlog::info("teacher ({}) read from {}: test {}", config.teacher.model, config.teacher_cache, summary(teacher_result.test));
  } else {
    teacher_result = train_ranker(ctr, config.teacher, progress("teacher", config.teacher.epochs), {}, &teacher);
    spdlog::info("teacher ({}): test {}", config.teacher.model, summary(teacher_result.test));
    if (!config.teacher_cache.empty()) save_teacher(config.teacher_cache, *teacher, config.teacher, teacher_result.test);
  }

  // 2. The search (or the fixed baseline).
  AutoFasObserver observer;
  const bool tty = isatty(STDERR_FILENO);
  observer.on_progress = [&, tty](uint32_t epoch, size_t step, size_t steps, double loss1, double loss2, double lat, double lat2) {
    if (!tty) return;
    std::fprintf(stderr, "\rsearch epoch %u/%u  step %zu/%zu  Loss1 %.4f  Loss2 %.4f  E[lat] %.1f  E[lat'] %.1f us   ", epoch,
                 config.search_epochs, step, steps, loss1, loss2, lat, lat2);
    std::fflush(stderr);
  };
  const AutoFasSearch search =
      config.student == "search" ? autofas_search(*teacher, ctr, config, table, observer) : fixed_student(*teacher, config, table);
  if (tty) std::fprintf(stderr, "\r\033[K");
  for (size_t f = 0; f < search.fields.size(); ++f)
    spdlog::info("  field {:<28} theta {:.3f}  cost {:>8.1f} us  {}", search.fields[f], search.theta[f], search.field_costs[f],
                 search.kept[f] ? "kept" : "dropped");
  std::string layers;
  for (uint32_t w : search.layers) layers += std::to_string(w) + " -> ";
  spdlog::info("  student: {:.0f} inputs -> {}1; predicted {:.1f} us per {} candidates on {} (fields {:.1f}, layers {:.1f})",
               search.input_width, layers, search.feature_latency + search.architecture_latency, table.candidates(), table.target(),
               search.feature_latency, search.architecture_latency);

  // 3. The student, from scratch, distilled from the teacher.
  const RankerConfig student = student_config(config, search);
  const std::vector<float> soft = teacher_probabilities(*teacher, in, config.teacher.batch_size);
  std::unique_ptr<RankerModel> student_model;
  const RankerResult student_result = train_ranker(ctr, student, progress("student", student.epochs),
                                                   distillation_term(soft, ctr.instances.train.size(), student.distillation), &student_model);
  spdlog::info("student: test {}", summary(student_result.test));

  // 4. One file, both stages; what was chosen and why in its metadata.
  const json search_json = search.to_json(config, table);
  const Metadata metadata = {{"dataset", ctr.data.name},
                             {"stage", "pre_ranking+ranking"},
                             {"autofas_config", autofas_config_to_json(config).dump()},
                             {"ranking_config", ranker_config_to_json(config.teacher).dump()},
                             {"pre_ranking_config", ranker_config_to_json(student).dump()},
                             {"pre_ranking", search_json.dump()},
                             {"ranking_test", metrics_json(teacher_result.test).dump()},
                             {"pre_ranking_test", metrics_json(student_result.test).dump()}};
  const std::vector<uint8_t> bytes = export_funnel(ctr.data, nullptr, teacher.get(), student_model.get(), metadata);
  write_file_atomically(args.out, bytes);

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
                         {"teacher", {{"test", metrics_json(teacher_result.test)}}},
                         {"student", {{"test", metrics_json(student_result.test)}, {"validation", metrics_json(student_result.validation)},
                                      {"config", ranker_config_to_json(student)}}},
                         {"search", search_json},
                         {"agreement", {{"requests", agreement.requests}, {"candidates", agreement.candidates}, {"ks", agreement.ks},
                                        {"recall_of_top10", agreement.recall_of_top10}}},
                         {"sdk_us_per_1000", {{"pre_ranking", agreement.pre_ranking_us}, {"ranking", agreement.ranking_us}}},
                         {"two_tower", two_tower ? json{{"recall_of_top10", agreement.two_tower_recall_of_top10}, {"us_per_1000", agreement.two_tower_us}}
                                                 : json(nullptr)},
                         {"total_seconds", total}};
    std::ofstream(args.report) << report.dump(2) << "\n";
  }
  return 0;
}

}  // namespace funnel::train::cli
