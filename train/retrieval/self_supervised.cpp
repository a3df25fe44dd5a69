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

void SelfSupervisedTask::draw_batch(size_t n) {
  const size_t catalogue = items_.size();
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

const TowerAugmentation* SelfSupervisedTask::local_view(const TowerAugmentation& whole, TowerAugmentation* local) const {
  if (local_count_ == batch_.size()) return &whole;
  local->masked = whole.masked;
  local->offsets.assign(whole.offsets.size(), {});
  local->ids.assign(whole.ids.size(), {});
  for (size_t f = 0; f < whole.offsets.size(); ++f) {
    if (whole.offsets[f].empty()) continue;
    const uint32_t base = whole.offsets[f][local_begin_], end = whole.offsets[f][local_begin_ + local_count_];
    for (size_t b = local_begin_; b <= local_begin_ + local_count_; ++b) local->offsets[f].push_back(whole.offsets[f][b] - base);
    local->ids[f].assign(whole.ids[f].begin() + base, whole.ids[f].begin() + end);
  }
  return local;
}

void SelfSupervisedTask::draw(int rank, int ranks) {
  const size_t per_rank = config_.ssl_batch_size ? config_.ssl_batch_size : config_.batch_size;
  draw_batch(std::min<size_t>(per_rank * static_cast<size_t>(ranks), items_.size()));
  const size_t n = batch_.size(), r = static_cast<size_t>(rank), world = static_cast<size_t>(ranks);
  local_begin_ = n * r / world;
  local_count_ = n * (r + 1) / world - local_begin_;
  masks_ = {};
  if (n < 2 || !self_supervised_masks(config_)) return;
  masks_ = config_.ssl == "cfm" ? correlated_feature_masks(mutual_information_, items_.features.size(), rng_)
                                : random_feature_masks(items_.features.size(), rng_);
  make_view(masks_.first, &first_);
  make_view(masks_.second, &second_);
}

double SelfSupervisedTask::forward(bool gradients) {
  draw(0, 1);
  return forward(local_communicator(), gradients);
}

// Every rank's rows of [n, dim] outputs, in rank order; one process: `local` itself.
static const float* gather_rows(Communicator& comm, const float* local, size_t rows, size_t dim, std::vector<float>* all) {
  if (!comm.distributed()) return local;
  *all = comm.allgatherv<float>(std::span<const float>(local, rows * dim));
  return all->data();
}

// Both views' outputs of every rank in one all-gather (each rank sends its rows of z1, then of z2; rank r
// holds rows [n r / N, n (r + 1) / N)), unpacked into [n, dim] each, in rank order.
static void gather_views(Communicator& comm, const float* z1, const float* z2, size_t n, size_t dim, std::vector<float>* all1,
                         std::vector<float>* all2) {
  const size_t ranks = static_cast<size_t>(comm.size()), mine = n * static_cast<size_t>(comm.rank() + 1) / ranks - n * static_cast<size_t>(comm.rank()) / ranks;
  std::vector<float> send(z1, z1 + mine * dim);
  send.insert(send.end(), z2, z2 + mine * dim);
  const std::vector<float> all = comm.allgatherv<float>(send);
  all1->resize(n * dim);
  all2->resize(n * dim);
  size_t at = 0;
  for (size_t r = 0; r < ranks; ++r) {
    const size_t begin = n * r / ranks, rows = n * (r + 1) / ranks - begin;
    std::copy(all.begin() + static_cast<long>(at), all.begin() + static_cast<long>(at + rows * dim), all1->begin() + static_cast<long>(begin * dim));
    at += rows * dim;
    std::copy(all.begin() + static_cast<long>(at), all.begin() + static_cast<long>(at + rows * dim), all2->begin() + static_cast<long>(begin * dim));
    at += rows * dim;
  }
}

double SelfSupervisedTask::forward(Communicator& comm, bool gradients) {
  const size_t n = batch_.size(), dim = h_.output_dim();
  if (n < 2) return 0.0;  // a softmax over one item has nothing to contrast
  const std::span<const uint32_t> rows = local_rows();
  std::vector<float> d_first(n * dim), d_second(n * dim), gathered_first, gathered_second;
  float* d1 = gradients ? d_first.data() : nullptr;
  float* d2 = gradients ? d_second.data() : nullptr;
  double loss = 0.0;
  if (config_.ssl == "spread_out_square") {
    const float* z = gather_rows(comm, h_.forward(first_pass_, rows, nullptr), local_count_, dim, &gathered_first);
    loss = spread_out_square_loss(z, n, dim, d1);
  } else if (config_.ssl == "spread_out") {
    // Identity augmentation: both views are the item itself, so the positive is exp(1/tau) and the loss only
    // pushes the items apart. The gradient reaches z through both sides of the softmax.
    const float* z = gather_rows(comm, h_.forward(first_pass_, rows, nullptr), local_count_, dim, &gathered_first);
    loss = contrastive_loss(z, z, n, dim, config_.ssl_temperature, d1, d2);
    if (gradients)
      for (size_t i = 0; i < n * dim; ++i) d_first[i] += d_second[i];
  } else {
    const float* z1 = h_.forward(first_pass_, rows, local_view(first_, &local_first_));
    const float* z2 = g_->forward(second_pass_, rows, local_view(second_, &local_second_));
    if (comm.distributed()) {
      gather_views(comm, z1, z2, n, dim, &gathered_first, &gathered_second);
      z1 = gathered_first.data();
      z2 = gathered_second.data();
    }
    loss = contrastive_loss(z1, z2, n, dim, config_.ssl_temperature, d1, d2);
  }
  if (gradients) {
    // Eq. 5: L = L_main + alpha L_self. This rank keeps its rows' share.
    d_first_.assign(d_first.begin() + static_cast<long>(local_begin_ * dim), d_first.begin() + static_cast<long>((local_begin_ + local_count_) * dim));
    d_second_.assign(d_second.begin() + static_cast<long>(local_begin_ * dim), d_second.begin() + static_cast<long>((local_begin_ + local_count_) * dim));
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
