// The config of a whole-funnel run (`funnel train-funnel`): one section per stage, every field defaulted.
//   {"retrieval":   {...the two-tower config (retrieval/two_tower_config.hpp)...},
//    "ranking":     {...the ranking config (ranking/ranker_config.hpp), also the AutoFAS teacher...},
//    "pre_ranking": {...the AutoFAS search and student fields (pre_ranking/autofas_config.hpp)...}}
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "train/pre_ranking/autofas_config.hpp"
#include "train/retrieval/two_tower_config.hpp"

namespace funnel::train {

struct FunnelConfig {
  TrainConfig retrieval;
  AutoFasConfig pre_ranking;  // pre_ranking.teacher is the ranking stage
};

// Throws ConfigError naming `where`, the section and the field for unknown sections or keys, wrong types
// and bad values (a ranking field in the pre_ranking section is an unknown key there).
FunnelConfig funnel_config_from_json(const nlohmann::json& object, const std::string& where);
nlohmann::json funnel_config_to_json(const FunnelConfig& config);

}  // namespace funnel::train
