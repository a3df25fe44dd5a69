#include "train/retrieval/global_negatives.hpp"

namespace funnel::train {

SampledSoftmaxOptions softmax_options(const TrainConfig& config) {
  SampledSoftmaxOptions options;
  options.temperature = config.temperature;
  options.logq_correction = config.logq != "none";
  options.mask_accidental_hits = config.mask_accidental_hits;
  return options;
}

double global_negatives_step(TwoTowerModel& model, Communicator& comm, std::span<const uint32_t> users, GlobalBatch& batch,
                             const TrainConfig& config, const NegativeBank& bank, double* ssl_loss) {
  TowerNet& user_tower = model.user_tower();
  TowerNet& item_tower = model.item_tower();
  const bool distributed = comm.distributed();
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
  double self_loss = 0.0;
  // The towers are independent until the loss: one thread each. On one process the auxiliary task runs the
  // item tower again on the item side; across ranks it is collective (the views' outputs all-gathered), so
  // it runs on this thread after the towers' own passes.
#pragma omp parallel sections
  {
#pragma omp section
    u = user_tower.forward(users);
#pragma omp section
    {
      v = item_tower.forward(items);
      if (ssl && !distributed) self_loss = ssl->forward(comm, /*gradients=*/true);
    }
  }
  if (ssl && distributed) self_loss = ssl->forward(comm, /*gradients=*/true);
  if (ssl_loss) *ssl_loss = self_loss;
  const size_t dim = user_tower.output_dim();
  const float* all_v = v;  // the global batch's item embeddings: on one process, this rank's
  if (distributed) {
    batch.embeddings = comm.allgatherv<float>(std::span<const float>(v, batch.count * dim));
    if (batch.embeddings.size() != batch.items.size() * dim)
      throw CommunicationError("rank " + std::to_string(comm.rank()) + ": the gathered item embeddings (" +
                               std::to_string(batch.embeddings.size() / dim) + ") do not match the global batch (" +
                               std::to_string(batch.items.size()) + " items)");
    all_v = batch.embeddings.data();
  }

  std::vector<float> du(users.size() * dim), dv(batch.items.size() * dim);
  double loss = sampled_softmax(u, all_v, batch.items, batch.log_q, dim, softmax_options(config), du.data(), dv.data(), bank,
                                {batch.first, batch.count, batch.items.size()});
  if (distributed) {
    // Every rank's share of every item's gradient: summed, each rank keeps its own items' rows; the loss rides
    // along as one more float (one call less per step; a float's rounding, ~1e-7 relative, on the loss alone).
    dv.push_back(static_cast<float>(loss));
    comm.allreduce_sum(dv);
    loss = dv.back();
    dv.pop_back();
  }
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
