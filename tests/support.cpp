#include "support.hpp"

#include <filesystem>
#include <fstream>
#include <random>

#include "train/export/export.hpp"
#include "train/data/synthetic.hpp"
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

const train::Dataset& small_dataset() {
  static const train::Dataset data = [] {
    TempDir dir;
    train::SyntheticOptions options;
    options.users = 200;
    options.items = 120;
    options.categories = 6;
    options.mean_interactions = 12;
    options.seed = 7;
    return train::load_dataset(train::write_synthetic_dataset(dir.path(), options));
  }();
  return data;
}

std::vector<uint8_t> small_model_bytes(uint64_t seed) {
  train::TrainConfig config;
  config.seed = seed;
  config.embedding_dim = 8;
  config.hidden = {16};
  config.output_dim = 8;
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
