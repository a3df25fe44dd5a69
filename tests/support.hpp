// Shared fixtures: a small synthetic dataset on disk, an exported model, the small configs and CTR instances
// the training tests share, finite differences.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "train/data/ctr_data.hpp"
#include "train/data/dataset.hpp"
#include "train/data/synthetic.hpp"
#include "train/ranking/ranker_config.hpp"
#include "train/retrieval/two_tower_config.hpp"

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

// The generator's options of the small synthetic dataset: 200 users, 120 items, 6 categories, 12
// interactions per user on average, seed 7 (for a test that needs the files on disk).
train::SyntheticOptions small_synthetic_options();
// The small synthetic dataset, generated once per process.
const train::Dataset& small_dataset();
// Its CTR instances by the DIN protocol with histories of 5, 2 negatives per positive, data seed 3; built
// once per process.
const train::CtrDataset& small_ctr();

// Small two-tower towers that train in well under a second on small_dataset(): embeddings of 8, one hidden
// layer of 16, outputs of 8, batches of 64, 3 epochs on 1 thread.
train::TrainConfig small_two_tower_config();
// A small CAN ranker for small_dataset(): histories of 5, embeddings of 4, an MLP of 6 and 3, co-action
// feeds of 4 through micro-MLPs of 3 and 2; the rest of RankerConfig's defaults.
train::RankerConfig small_ranker_config();
// A wider CAN ranker that learns the synthetic data in 3 epochs (the learning tests' AUC thresholds):
// histories of 10, embeddings of 8 (small enough for the sanitizer build), an MLP of 32 and 16, co-action
// feeds of 8 through micro-MLPs of 4 and 2, batches of 64, learning rate 3e-3.
train::RankerConfig learning_ranker_config();
// A model of small_dataset() exported untrained (fast) from small_two_tower_config() with the given seed.
std::vector<uint8_t> small_model_bytes(uint64_t seed = 1);

// The real-data folder ../shared/data/<name>, or "" when it is absent.
std::string shared_data(const std::string& name);

// Central finite difference of `loss` with respect to `x`, restoring x afterwards.
double numeric_gradient(float& x, const std::function<double()>& loss, float h = 1e-3f);

}  // namespace funnel::test
