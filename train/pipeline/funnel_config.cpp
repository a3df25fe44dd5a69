#include "train/pipeline/funnel_config.hpp"

#include "train/core/config_io.hpp"
#include "train/core/errors.hpp"

namespace funnel::train {

namespace {

using json = nlohmann::json;

const json& section(const json& object, const char* name) {
  static const json empty = json::object();
  return object.contains(name) ? object.at(name) : empty;
}

// The AutoFAS config's own fields: what autofas_config_to_json writes beyond the teacher's ranking fields.
json search_fields(const AutoFasConfig& config) {
  json out = autofas_config_to_json(config);
  const json teacher = ranker_config_to_json(config.teacher);
  for (const auto& [key, value] : teacher.items()) out.erase(key);
  return out;
}

}  // namespace

FunnelConfig funnel_config_from_json(const json& object, const std::string& where) {
  config_io::check_known_keys(object, funnel_config_to_json(FunnelConfig{}), where);
  FunnelConfig config;
  config.retrieval = config_from_json(section(object, "retrieval"), where + ", section retrieval");
  const json& ranking = section(object, "ranking");
  const json& pre_ranking = section(object, "pre_ranking");
  config_io::check_known_keys(ranking, ranker_config_to_json(RankerConfig{}), where + ", section ranking");
  config_io::check_known_keys(pre_ranking, search_fields(AutoFasConfig{}), where + ", section pre_ranking");
  json merged = ranking;
  merged.update(pre_ranking);
  config.pre_ranking = autofas_config_from_json(merged, where + ", sections ranking and pre_ranking");
  if (config.pre_ranking.two_tower_epochs > 0)
    throw ConfigError(where + ", section pre_ranking: two_tower_epochs trains a baseline for `funnel autofas`; the funnel's "
                      "retrieval stage is its own section");
  return config;
}

json funnel_config_to_json(const FunnelConfig& config) {
  return {{"retrieval", config_to_json(config.retrieval)},
          {"ranking", ranker_config_to_json(config.pre_ranking.teacher)},
          {"pre_ranking", search_fields(config.pre_ranking)}};
}

}  // namespace funnel::train
