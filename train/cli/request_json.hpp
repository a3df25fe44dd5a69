// The requests the model verbs read as JSON: a user's raw features (--user) and the items of a catalogue
// update (JSON Lines). The SDK alone and nlohmann/json: no trainer header, so the request fuzzer
// (tests/fuzz/fuzz_request_json.cpp) builds it with the SDK only.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "funnel/features.hpp"

namespace funnel::train::cli {

// A JSON object of feature name -> value (a string, a number, or a list of strings and numbers); `what`
// names the input in errors ("--user", "items.jsonl:3: features"). Throws std::runtime_error.
Features features_from_json(const std::string& text, const std::string& what = "--user");

// One line of a catalogue update, {"key": "...", "features": {...}}; nullopt for a blank line. `where`
// ("items.jsonl:3") starts every error. Throws std::runtime_error.
std::optional<std::pair<std::string, Features>> item_from_json_line(const std::string& line, const std::string& where);

}  // namespace funnel::train::cli
