// Training checkpoints: a JSON header and named binary arrays in one file, written atomically
// (temporary file, then rename), so a crash or a failed run never leaves a half-written checkpoint.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace funnel::train {

struct Checkpoint {
  std::string path;  // set by load_checkpoint, for messages
  nlohmann::json header;
  std::map<std::string, std::vector<float>> floats;
  std::map<std::string, std::vector<uint32_t>> integers;

  const std::vector<float>& float_array(const std::string& name) const;
  const std::vector<uint32_t>& integer_array(const std::string& name) const;
};

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);
// Throws TrainingError naming the file for anything truncated, foreign or inconsistent.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace funnel::train
