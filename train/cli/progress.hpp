// What the training verbs show while they work: a progress line on a terminal (epoch, step, loss,
// samples/s, ETA), a log line per epoch, and the per-epoch metrics log (JSON lines) when asked for.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>

#include "train/pre_ranking/autofas.hpp"
#include "train/pre_ranking/autofas_training.hpp"
#include "train/ranking/ranker_training.hpp"
#include "train/retrieval/two_tower_training.hpp"

namespace funnel::train::cli {

std::string ctr_summary(const CtrMetrics& metrics);

// `metrics_log`, when open, receives one JSON line per epoch; it must outlive the observer.
TrainObserver retrieval_progress(const TrainConfig& config, std::ofstream* metrics_log = nullptr);
// `what` ("teacher", "student", ...) prefixes every line; empty for a run of its own.
RankerObserver ranking_progress(const std::string& what, uint32_t epochs, std::ofstream* metrics_log = nullptr);
AutoFasObserver search_progress(uint32_t search_epochs);

// The AutoFAS run's outcome: the teacher, each field's keep probability and cost, the student's shape,
// predicted latency and test metrics.
void log_autofas_run(const AutoFasResult& run, const AutoFasConfig& config, const LatencyTable& table);

// Opens --metrics-log (truncating it) when a path is given.
void open_metrics_log(const std::string& path, std::ofstream* log);

}  // namespace funnel::train::cli
