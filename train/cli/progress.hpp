// What the training verbs show while they work: a progress line on a terminal (epoch, step, loss,
// samples/s, ETA), a log line per epoch, and the per-epoch metrics log (JSON lines) when asked for.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "train/pre_ranking/autofas.hpp"
#include "train/pre_ranking/autofas_training.hpp"
#include "train/ranking/ranker_training.hpp"
#include "train/retrieval/two_tower_training.hpp"

namespace funnel::train::cli {

std::string ctr_summary(const CtrMetrics& metrics);

// --metrics-log: one JSON line per epoch. The log is small (a line per epoch), so each new line rewrites the
// whole file atomically (train/core/atomic_file.hpp): a reader, or a run killed at any moment, sees whole
// lines only. Constructed with a path, it writes an empty log at once (a path that cannot be written fails
// before training starts); with "" it is off. Failed writes throw TrainingError naming the file and the reason.
class MetricsLog {
 public:
  explicit MetricsLog(std::string path);
  bool enabled() const { return !path_.empty(); }
  void append(const nlohmann::json& line);

 private:
  std::string path_, text_;
};

// `metrics_log`, when enabled, receives one JSON line per epoch; it must outlive the observer.
TrainObserver retrieval_progress(const TrainConfig& config, MetricsLog* metrics_log = nullptr);
// `what` ("teacher", "student", ...) prefixes every line; empty for a run of its own.
RankerObserver ranking_progress(const std::string& what, uint32_t epochs, MetricsLog* metrics_log = nullptr);
AutoFasObserver search_progress(uint32_t search_epochs);

// The AutoFAS run's outcome: the teacher, each field's keep probability and cost, the student's shape,
// predicted latency and test metrics.
void log_autofas_run(const AutoFasResult& run, const AutoFasConfig& config, const LatencyTable& table);

}  // namespace funnel::train::cli
