#include "train/cli/request_json.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "funnel/encoding.hpp"

namespace funnel::train::cli {

using json = nlohmann::json;

Features features_from_json(const std::string& text, const std::string& what) {
  json object;
  try {
    object = json::parse(text);
  } catch (const json::exception& e) {  // a syntax error, or a number out of range (1e400)
    throw std::runtime_error(what + ": not valid JSON: " + e.what());
  }
  if (!object.is_object()) throw std::runtime_error(what + ": expected a JSON object of feature name -> value");
  Features features;
  for (const auto& [name, value] : object.items()) {
    if (value.is_string()) {
      features.set(name, value.get<std::string>());
    } else if (value.is_number()) {
      features.set(name, value.get<double>());
    } else if (value.is_array()) {
      std::vector<std::string> values;
      for (const json& v : value) {
        if (v.is_string()) values.push_back(v.get<std::string>());
        else if (v.is_number()) values.push_back(number_to_key(v.get<double>()));
        else throw std::runtime_error(what + ": feature '" + name + "': list values must be strings or numbers");
      }
      features.set(name, std::move(values));
    } else {
      throw std::runtime_error(what + ": feature '" + name + "' must be a string, a number or a list");
    }
  }
  return features;
}

std::optional<std::pair<std::string, Features>> item_from_json_line(const std::string& line, const std::string& where) {
  if (line.find_first_not_of(" \t\r") == std::string::npos) return std::nullopt;
  json object;
  try {
    object = json::parse(line);
  } catch (const json::exception& e) {  // a syntax error, or a number out of range (1e400)
    throw std::runtime_error(where + ": not valid JSON: " + e.what());
  }
  if (!object.is_object() || !object.contains("key") || !object["key"].is_string() || !object.contains("features"))
    throw std::runtime_error(where + ": expected {\"key\": \"...\", \"features\": {...}}");
  return std::make_pair(object["key"].get<std::string>(), features_from_json(object["features"].dump(), where + ": features"));
}

}  // namespace funnel::train::cli
