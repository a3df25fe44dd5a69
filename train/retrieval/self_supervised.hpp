// The self-supervised auxiliary task for the item tower (Yao et al., "Self-supervised Learning for
// Large-scale Item Recommendations", CIKM 2021). Each step draws its own batch of items, uniformly from the
// catalogue (the paper's heterogeneous distribution: the main task's batches follow the power law of the
// interactions), makes two views of each by complementary feature masking (RFM or CFM) and per-value
// dropout, encodes them with H (the item tower) and G, and contrasts them (eq. 3). Spread-out regularisation
// is offered as the degenerate case (identity augmentation, the same loss) and in its square-loss form.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "train/retrieval/two_tower_config.hpp"
#include "train/data/dataset.hpp"
#include "train/retrieval/feature_masking.hpp"
#include "train/core/rng.hpp"
#include "train/distributed/communicator.hpp"
#include "train/retrieval/tower_net.hpp"

namespace funnel::train {

// Whether the config's auxiliary task masks features (RFM, CFM), so the item tower needs default inputs.
inline bool self_supervised_masks(const TrainConfig& config) { return config.ssl == "rfm" || config.ssl == "cfm"; }

class SelfSupervisedTask {
 public:
  // `item_tower` is H and must have default inputs. G is H itself (ssl_share_mlp "full"), or a second encoder
  // that shares H's embedding tables and default inputs and, for "partial", every layer but the last; its
  // own layers are drawn from `init_rng`. Throws ConfigError when a masking pattern meets fewer than two
  // item features.
  SelfSupervisedTask(TowerNet& item_tower, const EntityTable& items, const TrainConfig& config, Rng& init_rng);

  // Draws a batch and computes L_self (unweighted); with `gradients`, also dL_self/d(outputs) scaled by
  // ssl_alpha, for backward(). Safe to run beside the user tower; not beside the item tower's own pass.
  // One process: draw(0, 1), then forward(local_communicator(), gradients).
  double forward(bool gradients);
  // Across ranks (docs/distributed.md): every rank draws the same global batch of `ranks` times the per-rank
  // size (the same generator, the same draws: items, masks, value dropout) and encodes its contiguous part,
  // local_rows(), whose table rows the caller fetches with the main batch's.
  void draw(int rank, int ranks);
  std::span<const uint32_t> local_rows() const { return {batch_.data() + local_begin_, local_count_}; }
  // Collective: encodes the local rows' views, all-gathers both views' outputs, and computes L_self over the
  // global batch on every rank (so every rank returns the same loss); with `gradients`, keeps the local rows'
  // share of alpha * dL_self for backward(). The summed gradients over the ranks are one process's.
  double forward(Communicator& comm, bool gradients);
  // Accumulates alpha * dL_self into H's (and G's) parameters from the last forward (its local rows).
  void backward();

  // G's own parameters (none when G is H).
  std::vector<Parameter*> parameters();
  // The item features' mutual information ([k, k], eq. 4), computed once from the catalogue for CFM.
  const std::vector<double>& mutual_information() const { return mutual_information_; }
  // CFM's group for every seed, in words: "item_id + release_year (H 7.43); ..." (H: the seed's entropy).
  std::string correlated_groups() const;
  // The last forward's items (catalogue rows) and masks (empty for the spread-out forms).
  const std::vector<uint32_t>& batch() const { return batch_; }
  const FeatureMasks& masks() const { return masks_; }
  // ssl_sampling "training" draws items by these weights (each item's training count); needed before forward().
  void set_training_counts(std::span<const uint32_t> counts);

  // For checkpoints: the draws continue where they stopped.
  Rng& rng() { return rng_; }

 private:
  TowerNet& h_;
  std::unique_ptr<TowerNet> own_g_;
  TowerNet* g_;
  const EntityTable& items_;
  const TrainConfig config_;
  Rng rng_;
  std::vector<double> mutual_information_;
  std::vector<double> cumulative_counts_;  // for "training" sampling

  std::vector<uint32_t> batch_;
  std::vector<uint8_t> in_batch_;
  FeatureMasks masks_;
  size_t local_begin_ = 0, local_count_ = 0;  // this rank's rows of batch_
  TowerAugmentation first_, second_;      // the views of the whole batch
  TowerAugmentation local_first_, local_second_;  // of the local rows (when they are not the whole batch)
  TowerPass first_pass_, second_pass_;
  std::vector<float> d_first_, d_second_;

  void draw_batch(size_t n);  // n distinct items, n <= the catalogue
  void make_view(const std::vector<uint8_t>& masked, TowerAugmentation* view);
  const TowerAugmentation* local_view(const TowerAugmentation& whole, TowerAugmentation* local) const;
};

}  // namespace funnel::train
