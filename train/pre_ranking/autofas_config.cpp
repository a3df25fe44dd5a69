#include "train/pre_ranking/autofas_config.hpp"

#include "train/core/config_io.hpp"
#include "train/core/errors.hpp"

namespace funnel::train {

namespace {

template <typename Visit>
void for_each_search_field(AutoFasConfig& c, Visit&& visit) {
  visit("search_epochs", c.search_epochs);
  visit("search_fraction", c.search_fraction);
  visit("mixops", c.mixops);
  visit("operators", c.operators);
  visit("field_costs", c.field_costs);
  visit("default_field_cost", c.default_field_cost);
  visit("latency_table", c.latency_table);
  visit("lambda", c.lambda);
  visit("lambda1", c.lambda1);
  visit("lambda2", c.lambda2);
  visit("mask_learning_rate", c.mask_learning_rate);
  visit("architecture_learning_rate", c.architecture_learning_rate);
  visit("supernet_learning_rate", c.supernet_learning_rate);
  visit("mask_init", c.mask_init);
  visit("keep_threshold", c.keep_threshold);
  visit("student_epochs", c.student_epochs);
  visit("student_learning_rate", c.student_learning_rate);
  visit("student", c.student);
  visit("fixed_layers", c.fixed_layers);
  visit("two_tower_epochs", c.two_tower_epochs);
  visit("teacher_cache", c.teacher_cache);
}

}  // namespace

AutoFasConfig autofas_config_from_json(const nlohmann::json& object, const std::string& where) {
  config_io::check_known_keys(object, autofas_config_to_json(AutoFasConfig{}), where);
  const nlohmann::json teacher_defaults = ranker_config_to_json(RankerConfig{});
  nlohmann::json teacher = nlohmann::json::object();
  for (const auto& [key, value] : object.items())
    if (teacher_defaults.contains(key)) teacher[key] = value;
  AutoFasConfig c;
  c.teacher = ranker_config_from_json(teacher, where);
  for_each_search_field(c, [&](const char* key, auto& member) { config_io::read(object, key, &member, where); });
  const auto require = [&where](bool ok, const std::string& message) {
    if (!ok) throw ConfigError(where + ": " + message);
  };
  require(c.search_epochs >= 1, "search_epochs must be at least 1");
  require(c.search_fraction > 0 && c.search_fraction <= 1, "search_fraction must be in (0, 1]");
  require(c.mixops >= 1 && c.mixops <= 8, "mixops must be in 1..8");
  require(!c.operators.empty(), "operators must list at least one operator (0: the identity, w: a dense layer of w units)");
  require(std::count(c.operators.begin(), c.operators.end(), 0u) <= 1, "operators may list the identity (0) once");
  for (uint32_t w : c.operators) require(w <= 65536, "operator widths must be at most 65536");
  for (const auto& [field, cost] : c.field_costs) require(std::isfinite(cost) && cost >= 0, "field_costs['" + field + "'] must be a cost >= 0");
  require(c.default_field_cost >= 0, "default_field_cost must be >= 0");
  require(c.lambda >= 0 && c.lambda2 >= 0, "lambda and lambda2 must be >= 0");
  require(c.lambda1 >= 0 && c.lambda1 <= 1, "lambda1 must be in [0, 1]");
  require(c.mask_learning_rate > 0 && c.architecture_learning_rate > 0 && c.supernet_learning_rate > 0 && c.student_learning_rate > 0,
          "learning rates must be positive");
  require(c.mask_init > 0 && c.mask_init < 1, "mask_init must be in (0, 1)");
  require(c.keep_threshold > 0 && c.keep_threshold < 1, "keep_threshold must be in (0, 1)");
  require(c.student_epochs >= 1, "student_epochs must be at least 1");
  require(c.student == "search" || c.student == "fixed", "student must be 'search' (AutoFAS) or 'fixed' (the fixed_layers baseline)");
  for (uint32_t w : c.fixed_layers) require(w >= 1 && w <= 65536, "fixed_layers sizes must be in 1..65536");
  return c;
}

nlohmann::json autofas_config_to_json(const AutoFasConfig& config) {
  nlohmann::json out = ranker_config_to_json(config.teacher);
  AutoFasConfig copy = config;
  for_each_search_field(copy, [&out](const char* key, auto& member) {
    if constexpr (std::is_same_v<std::decay_t<decltype(member)>, std::map<std::string, float>>) {
      nlohmann::json costs = nlohmann::json::object();
      for (const auto& [field, cost] : member) costs[field] = config_io::tidy(cost);
      out[key] = costs;
    } else {
      out[key] = config_io::to_json_value(member);
    }
  });
  return out;
}

}  // namespace funnel::train
