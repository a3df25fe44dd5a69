// One JSON config per training run. Every hyper-parameter has a default; the effective config, defaults
// included, is written into the model file's metadata.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace funnel::train {

struct TrainConfig {
  uint32_t embedding_dim = 16;         // per feature
  std::vector<uint32_t> hidden = {64};  // ReLU layers of each tower
  uint32_t output_dim = 32;            // the shared embedding space
  float temperature = 0.05f;
  bool logq_correction = true;
  bool mask_accidental_hits = true;
  uint32_t batch_size = 256;
  uint32_t epochs = 20;
  float learning_rate = 1e-3f;
  uint64_t seed = 0;
  std::vector<uint32_t> eval_k = {10, 50};
  uint32_t select_k = 50;  // the epoch kept is the one with the best validation Recall@select_k
};

// Throws ConfigError naming `where` and the field for unknown keys and wrong types.
TrainConfig config_from_json(const nlohmann::json& object, const std::string& where);
TrainConfig load_config(const std::string& path);
nlohmann::json config_to_json(const TrainConfig& config);

}  // namespace funnel::train
