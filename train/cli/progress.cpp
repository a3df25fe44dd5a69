#include "train/cli/progress.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "train/cli/cli_support.hpp"
#include "train/core/atomic_file.hpp"
#include "train/core/errors.hpp"
#include "train/pre_ranking/autofas_training.hpp"

namespace funnel::train::cli {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The running line: "<what >epoch e/E  step s/S  loss L  N samples/s  ETA t", redrawn in place.
void print_progress(const std::string& what, Clock::time_point epoch_start, uint32_t epoch, uint32_t epochs, size_t step, size_t steps,
                    double loss, double rate) {
  const double elapsed = std::chrono::duration<double>(Clock::now() - epoch_start).count();
  const double eta = elapsed / static_cast<double>(step) * static_cast<double>(steps * (epochs - epoch + 1) - step);
  std::fprintf(stderr, "\r%sepoch %u/%u  step %zu/%zu  loss %.4f  %.0f samples/s  ETA %s   ", what.c_str(), epoch, epochs, step, steps, loss,
               rate, format_seconds(eta).c_str());
  std::fflush(stderr);
}

void clear_line(bool tty) {
  if (tty) std::fprintf(stderr, "\r\033[K");
}

}  // namespace

std::string ctr_summary(const CtrMetrics& m) { return fmt::format("AUC {:.4f}  GAUC {:.4f}  LogLoss {:.4f}", m.auc, m.gauc, m.logloss); }

MetricsLog::MetricsLog(std::string path) : path_(std::move(path)) {
  if (enabled()) write_file_atomically(path_, text_);
}

void MetricsLog::append(const json& line) {
  if (!enabled()) return;
  text_ += line.dump();
  text_ += '\n';
  write_file_atomically(path_, text_);
}

TrainObserver retrieval_progress(const TrainConfig& config, MetricsLog* metrics_log) {
  TrainObserver observer;
  const bool tty = isatty(STDERR_FILENO);
  auto epoch_start = std::make_shared<Clock::time_point>(Clock::now());
  observer.on_progress = [=](uint32_t epoch, size_t step, size_t steps, double loss, double rate) {
    if (tty) print_progress("", *epoch_start, epoch, config.epochs, step, steps, loss, rate);
  };
  observer.on_epoch = [=](const EpochRecord& r) {
    clear_line(tty);
    std::string drift;
    for (uint32_t delta : config.drift_deltas)
      if (const DriftAverage a = average_drift(r.drift, delta); a.probes) drift += fmt::format(" {}:{:.4f}", delta, a.mean);
    const std::string ssl = config.ssl == "none" ? "" : fmt::format("  {} loss {:.4f}", config.ssl, r.ssl_loss);
    spdlog::info("epoch {}/{}  loss {:.4f}{}  {:.0f} samples/s  lr {:.2g}{}{}", r.epoch, config.epochs, r.loss, ssl, r.samples_per_second,
                 r.learning_rate, drift.empty() ? "" : "  drift" + drift, r.cbns_active ? "  (CBNS on)" : "");
    spdlog::info("    validation {}", r.validation.summary());
    if (metrics_log && metrics_log->enabled()) {
      json line = {{"epoch", r.epoch}, {"loss", r.loss}, {"ssl_loss", r.ssl_loss}, {"samples_per_second", r.samples_per_second},
                   {"learning_rate", r.learning_rate}, {"steps", r.steps}, {"cbns_active", r.cbns_active},
                   {"validation", r.validation.to_json()}};
      json drift_records = json::array();
      for (const DriftRecord& d : r.drift) drift_records.push_back({{"step", d.step}, {"dt", d.delta}, {"sum", d.sum}, {"mean", d.mean}});
      line["drift"] = drift_records;
      metrics_log->append(line);
    }
    *epoch_start = Clock::now();
  };
  observer.on_note = [tty](const std::string& note) {
    clear_line(tty);
    spdlog::info("{}", note);
  };
  return observer;
}

RankerObserver ranking_progress(const std::string& what, uint32_t epochs, MetricsLog* metrics_log) {
  RankerObserver observer;
  const bool tty = isatty(STDERR_FILENO);
  const std::string prefix = what.empty() ? "" : what + " ";
  auto epoch_start = std::make_shared<Clock::time_point>(Clock::now());
  observer.on_progress = [=](uint32_t epoch, size_t step, size_t steps, double loss, double rate) {
    if (tty) print_progress(prefix, *epoch_start, epoch, epochs, step, steps, loss, rate);
  };
  observer.on_epoch = [=](const RankerEpoch& r) {
    clear_line(tty);
    spdlog::info("{}epoch {}/{}  loss {:.4f}  {:.0f} samples/s", prefix, r.epoch, epochs, r.loss, r.samples_per_second);
    if (r.validation.instances) spdlog::info("    validation {}", ctr_summary(r.validation));
    spdlog::info("    test       {}", ctr_summary(r.test));
    if (metrics_log && metrics_log->enabled()) {
      json line = {{"epoch", r.epoch}, {"loss", r.loss}, {"samples_per_second", r.samples_per_second},
                   {"validation", ctr_metrics_json(r.validation)}, {"test", ctr_metrics_json(r.test)}};
      if (!what.empty()) line["stage"] = what;
      metrics_log->append(line);
    }
    *epoch_start = Clock::now();
  };
  return observer;
}

AutoFasObserver search_progress(uint32_t search_epochs) {
  AutoFasObserver observer;
  const bool tty = isatty(STDERR_FILENO);
  observer.on_progress = [=](uint32_t epoch, size_t step, size_t steps, double loss1, double loss2, double lat, double lat2) {
    if (!tty) return;
    std::fprintf(stderr, "\rsearch epoch %u/%u  step %zu/%zu  Loss1 %.4f  Loss2 %.4f  E[lat] %.1f  E[lat'] %.1f us   ", epoch, search_epochs,
                 step, steps, loss1, loss2, lat, lat2);
    std::fflush(stderr);
  };
  return observer;
}

void log_autofas_run(const AutoFasResult& run, const AutoFasConfig& config, const LatencyTable& table) {
  const AutoFasSearch& search = run.search;
  if (run.teacher_from_cache) spdlog::info("teacher ({}) read from {}", config.teacher.model, config.teacher_cache);
  spdlog::info("teacher ({}): test {}", config.teacher.model, ctr_summary(run.teacher.test));
  for (size_t f = 0; f < search.fields.size(); ++f)
    spdlog::info("  field {:<28} theta {:.3f}  cost {:>8.1f} us  {}", search.fields[f], search.theta[f], search.field_costs[f],
                 search.kept[f] ? "kept" : "dropped");
  std::string layers;
  for (uint32_t w : search.layers) layers += std::to_string(w) + " -> ";
  spdlog::info("  student: {:.0f} inputs -> {}1; predicted {:.1f} us per {} candidates on {} (fields {:.1f}, layers {:.1f})",
               search.input_width, layers, search.feature_latency + search.architecture_latency, table.candidates(), table.target(),
               search.feature_latency, search.architecture_latency);
  spdlog::info("student: test {}", ctr_summary(run.student.test));
}

}  // namespace funnel::train::cli
