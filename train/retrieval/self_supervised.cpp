#include "train/retrieval/self_supervised.hpp"

#include <algorithm>
#include <cstdio>

#include "train/retrieval/contrastive_loss.hpp"
#include "train/core/errors.hpp"

namespace funnel::train {

SelfSupervisedTask::SelfSupervisedTask(TowerNet& item_tower, const EntityTable& items, const TrainConfig& config, Rng& init_rng)
    : h_(item_tower), g_(&item_tower), items_(items), config_(config), rng_(Rng(config.seed ^ 0x55E1F5ull).next()) {
  if (!self_supervised_masks(config)) return;  // spread-out compares H's outputs with themselves: G is H
  if (items.features.size() < 2)
    throw ConfigError("ssl '" + config.ssl + "' masks complementary halves of the item features and needs at least 2 of them; '" +
                      items.name + "' has " + std::to_string(items.features.size()));
  if (config.ssl_share_mlp != "full") {
    const size_t shared = config.ssl_share_mlp == "partial" ? h_.layers() - 1 : 0;
    own_g_ = std::make_unique<TowerNet>(h_, shared, "item_ssl_g", init_rng);
    g_ = own_g_.get();
  }
  if (config.ssl == "cfm") mutual_information_ = train::mutual_information(items);
}

std::vector<Parameter*> SelfSupervisedTask::parameters() { return own_g_ ? own_g_->parameters() : std::vector<Parameter*>{}; }

std::string SelfSupervisedTask::correlated_groups() const {
  const size_t k = items_.features.size();
  std::string out;
  for (size_t seed = 0; seed < k && !mutual_information_.empty(); ++seed) {
    std::string names;
    for (size_t f : correlated_group(mutual_information_, k, seed)) names += (names.empty() ? "" : " + ") + items_.features[f].def.name;
    char entropy[32];
    std::snprintf(entropy, sizeof entropy, " (H %.2f)", mutual_information_[seed * k + seed]);
    out += (out.empty() ? "" : "; ") + names + entropy;
  }
  return out;
}

void SelfSupervisedTask::set_training_counts(std::span<const uint32_t> counts) {
  cumulative_counts_.assign(counts.size(), 0.0);
  double sum = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) cumulative_counts_[i] = sum += counts[i];
}

void SelfSupervisedTask::draw_batch() {
  const size_t catalogue = items_.size();
  const size_t n = std::min<size_t>(config_.ssl_batch_size ? config_.ssl_batch_size : config_.batch_size, catalogue);
  // Clear the last batch's marks only: a step costs O(batch), not O(catalogue).
  in_batch_.resize(catalogue, 0);
  for (uint32_t item : batch_) in_batch_[item] = 0;
  batch_.clear();
  if (config_.ssl_sampling == "uniform") {
    // Floyd's algorithm: n distinct items, uniformly, in n draws. Distinct, because a repeated item would be
    // its own negative in eq. 3's softmax.
    for (size_t j = catalogue - n; j < catalogue; ++j) {
      size_t t = rng_.below(j + 1);
      if (in_batch_[t]) t = j;
      in_batch_[t] = 1;
      batch_.push_back(static_cast<uint32_t>(t));
    }
    return;
  }
  if (cumulative_counts_.size() != catalogue || cumulative_counts_.back() <= 0.0)
    throw TrainingError("ssl_sampling 'training' needs the items' training counts");
  // By the interactions, distinct items: popular items come early and repeats are redrawn (a bounded number
  // of times, so a catalogue with few trained items still gives a batch).
  for (size_t attempt = 0; batch_.size() < n && attempt < 20 * n; ++attempt) {
    const double x = rng_.uniform() * cumulative_counts_.back();
    const size_t t = static_cast<size_t>(std::upper_bound(cumulative_counts_.begin(), cumulative_counts_.end(), x) - cumulative_counts_.begin());
    if (t >= catalogue || in_batch_[t]) continue;
    in_batch_[t] = 1;
    batch_.push_back(static_cast<uint32_t>(t));
  }
}

void SelfSupervisedTask::make_view(const std::vector<uint8_t>& masked, TowerAugmentation* view) {
  const size_t k = items_.features.size();
  view->masked = masked;
  view->offsets.resize(k);
  view->ids.resize(k);
  std::vector<uint32_t> kept;
  for (size_t f = 0; f < k; ++f) {
    const FeatureColumn& feature = items_.features[f];
    view->offsets[f].clear();
    view->ids[f].clear();
    if (masked[f] || feature.def.kind != FeatureKind::kMultiCategorical || config_.ssl_dropout <= 0.0f) continue;
    view->offsets[f].push_back(0);
    for (uint32_t row : batch_) {
      drop_values(feature, row, config_.ssl_dropout, rng_, &kept);
      view->ids[f].insert(view->ids[f].end(), kept.begin(), kept.end());
      view->offsets[f].push_back(static_cast<uint32_t>(view->ids[f].size()));
    }
  }
}

double SelfSupervisedTask::forward(bool gradients) {
  draw_batch();
  const size_t n = batch_.size(), dim = h_.output_dim();
  if (n < 2) return 0.0;  // a softmax over one item has nothing to contrast
  d_first_.resize(n * dim);
  d_second_.resize(n * dim);
  float* d_first = gradients ? d_first_.data() : nullptr;
  float* d_second = gradients ? d_second_.data() : nullptr;
  double loss = 0.0;
  masks_ = {};
  if (config_.ssl == "spread_out_square") {
    const float* z = h_.forward(first_pass_, batch_, nullptr);
    loss = spread_out_square_loss(z, n, dim, d_first);
  } else if (config_.ssl == "spread_out") {
    // Identity augmentation: both views are the item itself, so the positive is exp(1/tau) and the loss only
    // pushes the items apart. The gradient reaches z through both sides of the softmax.
    const float* z = h_.forward(first_pass_, batch_, nullptr);
    loss = contrastive_loss(z, z, n, dim, config_.ssl_temperature, d_first, d_second);
    if (gradients)
      for (size_t i = 0; i < n * dim; ++i) d_first_[i] += d_second_[i];
  } else {
    const size_t k = items_.features.size();
    masks_ = config_.ssl == "cfm" ? correlated_feature_masks(mutual_information_, k, rng_) : random_feature_masks(k, rng_);
    make_view(masks_.first, &first_);
    make_view(masks_.second, &second_);
    const float* z1 = h_.forward(first_pass_, batch_, &first_);
    const float* z2 = g_->forward(second_pass_, batch_, &second_);
    loss = contrastive_loss(z1, z2, n, dim, config_.ssl_temperature, d_first, d_second);
  }
  if (gradients) {
    // Eq. 5: L = L_main + alpha L_self.
    for (float& d : d_first_) d *= config_.ssl_alpha;
    for (float& d : d_second_) d *= config_.ssl_alpha;
  }
  return loss;
}

void SelfSupervisedTask::backward() {
  if (batch_.size() < 2) return;
  h_.backward(first_pass_, d_first_.data());
  if (self_supervised_masks(config_)) g_->backward(second_pass_, d_second_.data());
}

}  // namespace funnel::train
