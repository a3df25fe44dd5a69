#include "support.hpp"

#include <filesystem>
#include <fstream>
#include <random>

#include "train/export/export.hpp"
#include "train/retrieval/two_tower.hpp"

namespace funnel::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::random_device device;
  path_ = (fs::temp_directory_path() / ("funnel-test-" + std::to_string(device()) + std::to_string(device()))).string();
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

std::string TempDir::write(const std::string& name, const std::string& text) const {
  const std::string path = file(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

train::SyntheticOptions small_synthetic_options() {
  train::SyntheticOptions options;
  options.users = 200;
  options.items = 120;
  options.categories = 6;
  options.mean_interactions = 12;
  options.seed = 7;
  return options;
}

const train::Dataset& small_dataset() {
  static const train::Dataset data = [] {
    TempDir dir;
    return train::load_dataset(train::write_synthetic_dataset(dir.path(), small_synthetic_options()));
  }();
  return data;
}

const train::CtrDataset& small_ctr() {
  static const train::CtrDataset ctr{small_dataset(), train::build_ctr_instances(small_dataset(), train::CtrOptions{5, 2, 3})};
  return ctr;
}

train::TrainConfig small_two_tower_config() {
  train::TrainConfig config;
  config.embedding_dim = 8;
  config.hidden = {16};
  config.output_dim = 8;
  config.batch_size = 64;
  config.epochs = 3;
  config.threads = 1;
  return config;
}

train::RankerConfig small_ranker_config() {
  train::RankerConfig config;
  config.max_history = 5;
  config.embedding_dim = 4;
  config.hidden = {6, 3};
  config.coaction_feed_dim = 4;
  config.coaction_layers = {3, 2};
  return config;
}

train::RankerConfig learning_ranker_config() {
  train::RankerConfig config;
  config.max_history = 10;
  config.embedding_dim = 8;
  config.hidden = {32, 16};
  config.coaction_feed_dim = 8;
  config.coaction_layers = {4, 2};
  config.epochs = 3;
  config.batch_size = 64;
  config.learning_rate = 3e-3f;
  return config;
}

std::vector<uint8_t> small_model_bytes(uint64_t seed) {
  train::TrainConfig config = small_two_tower_config();
  config.seed = seed;
  const train::TwoTowerModel model(small_dataset(), config);
  return train::export_two_tower(small_dataset(), model, config, {{"purpose", "test"}});
}

std::string shared_data(const std::string& name) {
  const fs::path path = fs::path(FUNNEL_SOURCE_DIR) / ".." / "shared" / "data" / name;
  return fs::is_directory(path) ? fs::canonical(path).string() : "";
}

double numeric_gradient(float& x, const std::function<double()>& loss, float h) {
  const float saved = x;
  x = saved + h;
  const double plus = loss();
  x = saved - h;
  const double minus = loss();
  x = saved;
  return (plus - minus) / (2.0 * static_cast<double>(h));
}

}  // namespace funnel::test
