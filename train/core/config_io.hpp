// What every JSON config shares: reading a field with a clear error, writing floats as people write them,
// reading a file.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "train/core/errors.hpp"

namespace funnel::train::config_io {

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
inline double tidy(float value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.7g", static_cast<double>(value));
  return std::strtod(buffer, nullptr);
}

template <typename T>
nlohmann::json to_json_value(const T& member) {
  if constexpr (std::is_same_v<T, float>) return tidy(member);
  else return member;
}

inline nlohmann::json parse_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open config");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError(path + ": not valid JSON: " + e.what());
  }
}

// Refuses keys that `defaults` (a config written with every field) does not have.
inline void check_known_keys(const nlohmann::json& object, const nlohmann::json& defaults, const std::string& where) {
  if (!object.is_object()) throw ConfigError(where + ": a config is a JSON object");
  for (const auto& [key, value] : object.items())
    if (!defaults.contains(key)) throw ConfigError(where + ": unknown field '" + key + "'");
}

}  // namespace funnel::train::config_io
