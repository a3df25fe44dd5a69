// The AutoFAS run from data to file: the ranking teacher (trained, or read from the teacher cache), the
// search on it (autofas.hpp), the derived student retrained from scratch with distillation (eq. 6), and one
// file holding the pre-ranking and ranking stages, with what was chosen and why in its metadata.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/data/ctr_data.hpp"
#include "train/export/export.hpp"
#include "train/pre_ranking/autofas.hpp"
#include "train/ranking/ranker_model.hpp"
#include "train/ranking/ranker_training.hpp"

namespace funnel::train {

struct AutoFasObservers {
  // The progress of one ranking run: "teacher" or "student", and its epochs.
  std::function<RankerObserver(const std::string& what, uint32_t epochs)> training;
  AutoFasObserver search;
};

struct AutoFasResult {
  bool teacher_from_cache = false;  // read from config.teacher_cache
  RankerResult teacher;  // with the cache, only the test metrics are known
  std::unique_ptr<RankerModel> teacher_model;
  AutoFasSearch search;
  RankerConfig student_config;
  RankerResult student;
  std::vector<uint8_t> model_file;  // the pre-ranking and ranking stages
};

// `metadata` joins the file's own (the configs, the search's record, both stages' test metrics).
AutoFasResult train_autofas(const CtrDataset& ctr, const AutoFasConfig& config, const LatencyTable& table,
                            const AutoFasObservers& observers = {}, const Metadata& metadata = {});

nlohmann::json ctr_metrics_json(const CtrMetrics& metrics);

}  // namespace funnel::train
