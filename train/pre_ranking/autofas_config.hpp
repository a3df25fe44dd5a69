// The AutoFAS run's config: the ranking teacher's fields and the search's (eq. 5-8 weights), with defaults.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/pre_ranking/latency.hpp"
#include "train/ranking/ranker_config.hpp"

namespace funnel::train {

struct AutoFasConfig {
  RankerConfig teacher;  // the ranking teacher (trained first, then frozen) and the data protocol

  // Search.
  uint32_t search_epochs = 1;
  float search_fraction = 1.0f;  // share of the training instances each search epoch visits (seeded draw)
  uint32_t mixops = 3;
  Operators operators = {0, 32, 64, 128, 256, 512};
  // Per-field fetch cost L_f in microseconds per latency-table batch of candidates ("candidate:item_id",
  // "behaviours:category", "user:age"...); fields not listed cost default_field_cost.
  std::map<std::string, float> field_costs;
  float default_field_cost = 10.0f;
  std::string latency_table;  // path of a bench-layers JSON file; required
  float lambda = 1e-3f;       // eq. 5: weight of E[lat] in Loss1, per microsecond
  float lambda1 = 0.5f;       // eq. 6: weight of the distillation term
  float lambda2 = 1e-4f;      // eq. 6: weight of E[lat'] in Loss2, per microsecond
  float mask_learning_rate = 0.05f;
  float architecture_learning_rate = 0.01f;
  float supernet_learning_rate = 1e-3f;
  float mask_init = 0.9f;     // theta_f at the start of the search
  float keep_threshold = 0.5f;

  // The derived student, retrained from scratch with distillation (lambda1).
  uint32_t student_epochs = 3;
  float student_learning_rate = 1e-3f;

  // Baselines for the study: "search" (AutoFAS), or "fixed": every field the student can read, through
  // fixed_layers, with no search. two_tower_epochs > 0 also trains a two-tower dot-product model (the
  // retrieval trainer, defaults otherwise) on the same data and measures it as a pre-ranker beside.
  std::string student = "search";
  std::vector<uint32_t> fixed_layers = {32};
  uint32_t two_tower_epochs = 0;
  // A file keeping the trained teacher, so that runs which differ only in the search share one teacher:
  // written after training when absent, read (and checked against the teacher's config) when present.
  std::string teacher_cache;
};

// The config as JSON: the teacher's fields (ranker_config.hpp) and the search's, side by side.
AutoFasConfig autofas_config_from_json(const nlohmann::json& object, const std::string& where);
nlohmann::json autofas_config_to_json(const AutoFasConfig& config);

}  // namespace funnel::train
