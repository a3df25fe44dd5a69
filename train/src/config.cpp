#include "config.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "errors.hpp"

namespace funnel::train {

namespace {

template <typename T>
void read(const nlohmann::json& object, const char* key, T* out, const std::string& where) {
  if (!object.contains(key)) return;
  try {
    *out = object.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw ConfigError(where + ": field '" + key + "' has the wrong type");
  }
}

// A float as the decimal a person wrote (0.05, not 0.05000000074505806).
double tidy(float value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.7g", static_cast<double>(value));
  return std::strtod(buffer, nullptr);
}

}  // namespace

TrainConfig config_from_json(const nlohmann::json& object, const std::string& where) {
  if (!object.is_object()) throw ConfigError(where + ": a config is a JSON object");
  const nlohmann::json defaults = config_to_json(TrainConfig{});
  for (const auto& [key, value] : object.items())
    if (!defaults.contains(key)) throw ConfigError(where + ": unknown field '" + key + "'");

  TrainConfig c;
  read(object, "embedding_dim", &c.embedding_dim, where);
  read(object, "hidden", &c.hidden, where);
  read(object, "output_dim", &c.output_dim, where);
  read(object, "temperature", &c.temperature, where);
  read(object, "logq_correction", &c.logq_correction, where);
  read(object, "mask_accidental_hits", &c.mask_accidental_hits, where);
  read(object, "batch_size", &c.batch_size, where);
  read(object, "epochs", &c.epochs, where);
  read(object, "learning_rate", &c.learning_rate, where);
  read(object, "seed", &c.seed, where);
  read(object, "eval_k", &c.eval_k, where);
  read(object, "select_k", &c.select_k, where);

  const auto require = [&where](bool ok, const char* message) {
    if (!ok) throw ConfigError(where + ": " + message);
  };
  require(c.embedding_dim >= 1 && c.embedding_dim <= 4096, "embedding_dim must be in 1..4096");
  require(c.output_dim >= 1 && c.output_dim <= 4096, "output_dim must be in 1..4096");
  for (uint32_t h : c.hidden) require(h >= 1 && h <= 65536, "hidden sizes must be in 1..65536");
  require(c.temperature > 0.0f, "temperature must be positive");
  require(c.batch_size >= 2, "batch_size must be at least 2 (in-batch negatives)");
  require(c.epochs >= 1, "epochs must be at least 1");
  require(c.learning_rate > 0.0f, "learning_rate must be positive");
  require(!c.eval_k.empty(), "eval_k must list at least one K");
  for (uint32_t k : c.eval_k) require(k >= 1, "eval_k values must be at least 1");
  require(c.select_k >= 1, "select_k must be at least 1");
  return c;
}

TrainConfig load_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open config");
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError(path + ": not valid JSON: " + e.what());
  }
  return config_from_json(object, path);
}

nlohmann::json config_to_json(const TrainConfig& c) {
  return {{"embedding_dim", c.embedding_dim},
          {"hidden", c.hidden},
          {"output_dim", c.output_dim},
          {"temperature", tidy(c.temperature)},
          {"logq_correction", c.logq_correction},
          {"mask_accidental_hits", c.mask_accidental_hits},
          {"batch_size", c.batch_size},
          {"epochs", c.epochs},
          {"learning_rate", tidy(c.learning_rate)},
          {"seed", c.seed},
          {"eval_k", c.eval_k},
          {"select_k", c.select_k}};
}

}  // namespace funnel::train
