// Shared fixtures: a small synthetic dataset on disk, an exported model, finite differences.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "train/retrieval/two_tower_config.hpp"
#include "train/data/dataset.hpp"

namespace funnel::test {

// A fresh temporary folder, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `text` to file(name) and returns that path.
  std::string write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

// A small synthetic dataset (200 users, 120 items), generated once per process.
const train::Dataset& small_dataset();
// A model of small_dataset() exported untrained (fast) from a config with the given seed.
std::vector<uint8_t> small_model_bytes(uint64_t seed = 1);

// The real-data folder ../shared/data/<name>, or "" when it is absent.
std::string shared_data(const std::string& name);

// Central finite difference of `loss` with respect to `x`, restoring x afterwards.
double numeric_gradient(float& x, const std::function<double()>& loss, float h = 1e-3f);

}  // namespace funnel::test
