#include "train/retrieval/two_tower.hpp"

#include <algorithm>

#include "train/retrieval/global_negatives.hpp"

namespace funnel::train {

TwoTowerModel::TwoTowerModel(const Dataset& data, const TrainConfig& config, Communicator* shard_over)
    : rng_(config.seed),
      user_(data.users, feature_offset(data, data.users), config, "user", rng_, /*default_inputs=*/false, shard_over),
      item_(data.items, feature_offset(data, data.items), config, "item", rng_, /*default_inputs=*/self_supervised_masks(config), shard_over) {
  // The second encoder G is made from the item tower as it is, sharded or not: it reads the same rows.
  if (config.ssl != "none") ssl_ = std::make_unique<SelfSupervisedTask>(item_, data.items, config, rng_);
}

std::vector<Parameter*> TwoTowerModel::parameters() {
  std::vector<Parameter*> out = user_.parameters();
  for (Parameter* p : item_.parameters()) out.push_back(p);
  if (ssl_)
    for (Parameter* p : ssl_->parameters()) out.push_back(p);
  return out;
}

std::vector<Parameter*> TwoTowerModel::replicated_parameters() {
  std::vector<Parameter*> out;
  for (Parameter* p : parameters())
    if (!user_.is_shard(p) && !item_.is_shard(p)) out.push_back(p);
  return out;
}

std::vector<size_t> TwoTowerModel::whole_rows() {
  std::vector<size_t> out;
  for (Parameter* p : parameters()) out.push_back(p->sparse ? std::max(user_.whole_rows(p), item_.whole_rows(p)) : 0);
  return out;
}

double two_tower_step(TwoTowerModel& model, std::span<const uint32_t> users, std::span<const uint32_t> items,
                      std::span<const float> log_q, const TrainConfig& config, bool backward, const NegativeBank& bank,
                      double* ssl_loss) {
  if (backward) {
    // One rank's global negatives: its batch is the global batch.
    GlobalBatch batch{{items.begin(), items.end()}, {log_q.begin(), log_q.end()}, 0, items.size(), {}};
    return global_negatives_step(model, local_communicator(), users, batch, config, bank, ssl_loss);
  }
  if (ssl_loss) *ssl_loss = 0.0;
  const float* u = nullptr;
  const float* v = nullptr;
#pragma omp parallel sections
  {
#pragma omp section
    u = model.user_tower().forward(users);
#pragma omp section
    v = model.item_tower().forward(items);
  }
  return sampled_softmax(u, v, items, log_q, model.user_tower().output_dim(), softmax_options(config), nullptr, nullptr, bank);
}

}  // namespace funnel::train
