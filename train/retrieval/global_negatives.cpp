#include "train/retrieval/global_negatives.hpp"

namespace funnel::train {

double global_negatives_step(TwoTowerModel& model, Communicator& comm, std::span<const uint32_t> users, GlobalBatch& batch,
                             const TrainConfig& config, const NegativeBank& bank, double* ssl_loss) {
  TowerNet& user_tower = model.user_tower();
  TowerNet& item_tower = model.item_tower();
  const std::span<const uint32_t> items(batch.items.data() + batch.first, batch.count);
  // The self-supervised task's global batch, drawn alike on every rank; this rank encodes its part of it.
  SelfSupervisedTask* ssl = model.self_supervised();
  if (ssl) ssl->draw(comm.rank(), comm.size());
  // Both towers' tables in one row exchange (4 collective calls in all, fetch and push), the item tower's
  // with the rows of this rank's self-supervised items too (the second encoder shares its tables).
  RowExchange exchange(comm);
  if (user_tower.sharded()) user_tower.stage_rows(exchange, users);
  if (item_tower.sharded()) {
    std::vector<uint32_t> item_rows(items.begin(), items.end());
    if (ssl) item_rows.insert(item_rows.end(), ssl->local_rows().begin(), ssl->local_rows().end());
    item_tower.stage_rows(exchange, item_rows);
  }
  if (exchange.tables() > 0) exchange.fetch();
  const float* u = nullptr;
  const float* v = nullptr;
#pragma omp parallel sections
  {
#pragma omp section
    u = user_tower.forward(users);
#pragma omp section
    v = item_tower.forward(items);
  }
  // Collective (the views' outputs all-gathered), so on this thread, after the towers' own passes.
  const double self_loss = ssl ? ssl->forward(comm, /*gradients=*/true) : 0.0;
  if (ssl_loss) *ssl_loss = self_loss;
  const size_t dim = user_tower.output_dim();
  batch.embeddings = comm.allgatherv<float>(std::span<const float>(v, batch.count * dim));
  if (batch.embeddings.size() != batch.items.size() * dim)
    throw CommunicationError("rank " + std::to_string(comm.rank()) + ": the gathered item embeddings (" +
                             std::to_string(batch.embeddings.size() / dim) + ") do not match the global batch (" +
                             std::to_string(batch.items.size()) + " items)");

  SampledSoftmaxOptions options;
  options.temperature = config.temperature;
  options.logq_correction = config.logq != "none";
  options.mask_accidental_hits = config.mask_accidental_hits;
  std::vector<float> du(users.size() * dim), dv(batch.items.size() * dim);
  double loss = sampled_softmax(u, batch.embeddings.data(), batch.items, batch.log_q, dim, options, du.data(), dv.data(), bank,
                                {batch.first, batch.count, batch.items.size()});
  // Every rank's share of every item's gradient: summed, each rank keeps its own items' rows; the loss rides
  // along as one more float (one call less per step; a float's rounding, ~1e-7 relative, on the loss alone).
  dv.push_back(static_cast<float>(loss));
  comm.allreduce_sum(dv);
  loss = dv.back();
  dv.pop_back();
  const float* dv_mine = dv.data() + batch.first * dim;
#pragma omp parallel sections
  {
#pragma omp section
    user_tower.backward(du.data());
#pragma omp section
    {
      item_tower.backward(dv_mine);
      if (ssl) ssl->backward();
    }
  }
  if (exchange.tables() > 0) exchange.push_gradients();
  return loss;
}

}  // namespace funnel::train
