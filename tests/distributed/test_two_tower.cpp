// The two-tower trainer on 2 ranks against 1 process (run under mpirun -np 2: every rank trains the
// distributed run, then rank 0 trains the one-process reference with the single-process communicator).
//
// Tolerance. 2 ranks of batch b compute what 1 process of batch 2b does, but sum in another order: the
// item embeddings' gradient is the sum of two ranks' shares instead of one product over 2b rows, and the
// dense gradients are all-reduced sums of two partial sums. Each step's gradients therefore agree to float
// rounding (relative ~1e-7), and so do the losses. Adam divides each gradient by its running RMS, so an
// element whose gradient is itself at the rounding level can take a step of up to the learning rate in
// another direction: per-element differences can grow by up to lr a step on such elements, while the rest
// stay at rounding. The checks: (a) every epoch's mean loss within 1e-4 relative; (b) after N = 20 steps the
// largest element difference below 1e-5 and (c) the median below 1e-6. Measured here (shared 2-core x86-64
// box): max 2.4e-7, median 0; 1e-5 is 40x that, and 1% of one Adam step (lr 1e-3): a rank's share missing,
// doubled or taken from the wrong rows moves elements by whole steps. Adam divides a gradient by its RMS, so
// a gradient scaled by the same factor everywhere (divided by the local batch instead of the global one)
// takes almost the same steps and no tolerance on the parameters catches it: (d) compares one step's
// gradients themselves, before the optimiser, with the one-process step's, at 1e-6 relative to the largest. Sharded against replicated tables, on 2 ranks both, sums the
// same shares in the same order: those must agree to 1e-6 (measured: 0, bit-identical).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "funnel_generated.h"
#include "support.hpp"
#include "train/data/split.hpp"
#include "train/distributed/communicator.hpp"
#include "train/distributed/gradient_allreduce.hpp"
#include "train/distributed/sharded_table.hpp"
#include "train/retrieval/global_negatives.hpp"
#include "train/retrieval/two_tower.hpp"
#include "train/retrieval/two_tower_training.hpp"

using namespace funnel::train;

namespace {

TrainConfig quick_config(uint32_t batch) {
  TrainConfig config = funnel::test::small_two_tower_config();
  config.batch_size = batch;
  config.epochs = 2;
  config.drift_interval = 5;
  config.drift_deltas = {1, 3};
  config.drift_sample = 32;
  config.train_fraction = 0.35f;  // 10 steps of 64 per epoch
  return config;
}

std::map<std::string, std::vector<float>> tensors_of(const std::vector<uint8_t>& file) {
  std::map<std::string, std::vector<float>> out;
  const funnel::fb::Model* model = funnel::fb::GetModel(file.data());
  for (const funnel::fb::Tensor* t : *model->tensors()) {
    if (t->dtype() != funnel::fb::DType::F32) continue;
    std::vector<float> values(t->data()->size() / sizeof(float));
    std::memcpy(values.data(), t->data()->data(), t->data()->size());
    out[t->name()->str()] = std::move(values);
  }
  return out;
}

struct Difference {
  double max = 0, median = 0;
  size_t elements = 0;
};

Difference compare(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  const auto ta = tensors_of(a), tb = tensors_of(b);
  REQUIRE(ta.size() == tb.size());
  std::vector<double> all;
  for (const auto& [name, values] : ta) {
    INFO(name);
    REQUIRE(tb.count(name));
    REQUIRE(tb.at(name).size() == values.size());
    for (size_t i = 0; i < values.size(); ++i) all.push_back(std::fabs(static_cast<double>(values[i]) - tb.at(name)[i]));
  }
  Difference d;
  d.elements = all.size();
  if (all.empty()) return d;
  d.max = *std::max_element(all.begin(), all.end());
  std::nth_element(all.begin(), all.begin() + static_cast<long>(all.size() / 2), all.end());
  d.median = all[all.size() / 2];
  return d;
}

// Trains `config` on 2 ranks (per-rank batch b), then, on rank 0, on one process with batch 2b, and checks
// they agree as the header says.
void check_two_ranks_match_one(TrainConfig config) {
  Communicator& comm = world();
  const Dataset& data = funnel::test::small_dataset();
  const Split split = leave_last_out(data);
  const uint32_t b = config.batch_size;
  TrainOptions distributed;
  distributed.communicator = &comm;
  const TrainResult two = train_two_tower(data, split, config, distributed);
  if (comm.rank() != 0) {
    CHECK(two.model_file.empty());
    return;
  }
  config.batch_size = b * static_cast<uint32_t>(comm.size());
  TrainOptions alone;
  alone.communicator = &local_communicator();
  const TrainResult one = train_two_tower(data, split, config, alone);
  REQUIRE(one.steps == two.steps);
  REQUIRE(one.steps >= 20);
  REQUIRE(one.history.size() == two.history.size());
  for (size_t e = 0; e < one.history.size(); ++e) {
    CHECK(two.history[e].loss == Approx(one.history[e].loss).epsilon(1e-4));
    CHECK(two.history[e].ssl_loss == Approx(one.history[e].ssl_loss).epsilon(1e-4));
  }
  const Difference d = compare(one.model_file, two.model_file);
  INFO("steps " << one.steps << ", max |diff| " << d.max << ", median " << d.median << " over " << d.elements << " parameters");
  CHECK(d.max < 1e-5);
  CHECK(d.median < 1e-6);
  // The runs did train: the parameters moved far more than they differ.
  TrainConfig untrained = config;
  untrained.epochs = 1;
  untrained.train_fraction = 0.01f;
  const Difference moved = compare(one.model_file, train_two_tower(data, split, untrained, alone).model_file);
  CHECK(moved.max > 5 * d.max);
}

}  // namespace

TEST_CASE("Two-tower, 2 ranks of batch B/2 == 1 process of batch B: in-batch negatives", "[two_ranks]") {
  REQUIRE(world().size() == 2);
  check_two_ranks_match_one(quick_config(32));
}

TEST_CASE("Two-tower, 2 ranks of batch B/2 == 1 process of batch B: CBNS, the bank filled from the global batch", "[two_ranks]") {
  REQUIRE(world().size() == 2);
  TrainConfig config = quick_config(32);
  config.negatives = "cbns";
  config.memory_size = 100;
  config.cbns_warmup_steps = 3;
  config.logq = "streaming";
  check_two_ranks_match_one(config);
}

// The self-supervised task across ranks: every rank draws the same global batch of 2 x 32 items (masks and
// value dropout alike), encodes its half with the item tower's sharded tables (fetched in the towers' row
// exchange), and all-gathers both views' outputs for L_self; the sums run in another order, so the same
// tolerance as in-batch's holds. RFM with G = H; CFM with G's own last layer (its tables: H's shards) and
// dropout of the multi-valued tags; spread-out (no views).
TEST_CASE("Two-tower, 2 ranks of batch B/2 == 1 process of batch B: the self-supervised task (RFM, CFM, spread-out)", "[two_ranks]") {
  REQUIRE(world().size() == 2);
  for (const char* ssl : {"rfm", "cfm", "spread_out"}) {
    INFO(ssl);
    TrainConfig config = quick_config(32);
    config.ssl = ssl;
    config.ssl_alpha = 0.5f;
    if (std::string(ssl) == "cfm") {
      config.ssl_share_mlp = "partial";
      config.ssl_dropout = 0.3f;
    }
    check_two_ranks_match_one(config);
  }
}

TEST_CASE("Two-tower on 2 ranks: tables sharded by row == tables replicated, for every table optimiser", "[two_ranks]") {
  Communicator& comm = world();
  REQUIRE(comm.size() == 2);
  const Dataset& data = funnel::test::small_dataset();
  const Split split = leave_last_out(data);
  // The tables' optimisers: dense and lazy Adam, and the sparse optimisers (each row's state with its owner).
  for (const std::string optimizer : {"adam", "lazy_adam", "sparse_adam", "momentum_tail_adam", "rowwise_adagrad"}) {
    INFO(optimizer);
    TrainConfig config = quick_config(32);
    if (optimizer == "adam" || optimizer == "lazy_adam") {
      config.optimizer = optimizer;
      config.sparse_optimizer = "none";
    } else {
      config.sparse_optimizer = optimizer;
    }
    config.sparse_optimizer_min_rows = 0;  // every table (the default leaves tables under 10,000 rows to Adam)
    config.epochs = 2;
    TrainOptions options;
    options.communicator = &comm;
    config.embedding_sharding = "sharded";
    const TrainResult sharded = train_two_tower(data, split, config, options);
    config.embedding_sharding = "replicated";
    const TrainResult replicated = train_two_tower(data, split, config, options);
    CHECK(sharded.exchange_bytes > 0);
    CHECK(replicated.exchange_bytes == 0);
    if (comm.rank() != 0) continue;
    const Difference d = compare(sharded.model_file, replicated.model_file);
    INFO("max |diff| " << d.max << " over " << d.elements << " parameters");
    CHECK(d.max < 1e-6);
  }
}

// A sharded model holds no whole table on any rank: each tower table's own arrays are empty, each rank's shard
// has exactly the rows it owns, with the values one process draws there, and the layers drawn after the tables
// start as one process's (the draws happen in one process's order on every rank).
TEST_CASE("Two-tower on 2 ranks: sharded tables hold only each rank's rows, drawn as one process draws them", "[two_ranks]") {
  Communicator& comm = world();
  REQUIRE(comm.size() == 2);
  const Dataset& data = funnel::test::small_dataset();
  TrainConfig config = quick_config(32);
  config.ssl = "cfm";  // the second encoder reads the item tower's shards
  TwoTowerModel sharded(data, config, &comm);
  TwoTowerModel whole(data, config);
  const std::vector<Parameter*> parts = sharded.parameters();
  const std::vector<Parameter*> reference = whole.parameters();
  REQUIRE(parts.size() == reference.size());
  size_t shards = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Parameter& part = *parts[i];
    const Parameter& full = *reference[i];
    INFO(full.name);
    REQUIRE(part.name == full.name);
    if (!sharded.user_tower().is_shard(&part) && !sharded.item_tower().is_shard(&part)) {
      CHECK(part.value == full.value);  // a replicated parameter, drawn after the tables
      continue;
    }
    ++shards;
    const size_t rows = full.shape[0], dim = full.shape[1];
    std::vector<uint32_t> owned;
    for (uint32_t r = 0; r < rows; ++r)
      if (ShardedTable::owner(r, comm.size()) == comm.rank()) owned.push_back(r);
    REQUIRE(part.value.size() == owned.size() * dim);
    bool same_rows = true;
    for (size_t k = 0; k < owned.size(); ++k)
      same_rows = same_rows && std::equal(part.value.begin() + static_cast<long>(k * dim), part.value.begin() + static_cast<long>((k + 1) * dim),
                                          full.value.begin() + static_cast<long>(owned[k] * dim));
    CHECK(same_rows);
    std::vector<double> counted{static_cast<double>(owned.size())};
    comm.allreduce_sum(counted);
    CHECK(counted[0] == static_cast<double>(rows));  // the shards partition the table
    CHECK(owned.size() < rows);
  }
  CHECK(shards > 0);
  // The towers' own table Parameters keep name and shape, without arrays.
  const auto check_empty = [](const TowerNet& tower, const EntityTable& table) {
    for (size_t f = 0; f < table.features.size(); ++f) {
      const Parameter* embedding = tower.embedding(f);
      if (!embedding) continue;
      INFO(embedding->name);
      CHECK(embedding->value.capacity() == 0);
      CHECK(embedding->grad.capacity() == 0);
      CHECK(embedding->shape.at(0) == table.features[f].cardinality);
    }
  };
  check_empty(sharded.user_tower(), data.users);
  check_empty(sharded.item_tower(), data.items);
}

// A sharded two-tower step makes a fixed, small number of collective calls whatever its tables: the batch's
// item ids all-gathered (2: sizes, ids), the row exchange of both towers' tables (4), the item embeddings
// all-gathered (2), their gradient with the loss in one all-reduce (1), the dense gradients' all-reduce (1).
TEST_CASE("Two-tower on 2 ranks: a sharded step makes 10 collective calls for all its tables", "[two_ranks]") {
  Communicator& comm = world();
  REQUIRE(comm.size() == 2);
  const Dataset& data = funnel::test::small_dataset();
  const Split split = leave_last_out(data);
  TrainConfig config = quick_config(32);
  config.epochs = 1;
  config.drift_sample = 0;
  config.embedding_sharding = "sharded";
  TrainOptions options;
  options.communicator = &comm;
  const TrainResult result = train_two_tower(data, split, config, options);
  REQUIRE(result.steps > 0);
  CHECK(result.step_collectives == 10 * static_cast<uint64_t>(result.steps));
}

// (d) One step's gradients, before the optimiser: 2 ranks of b rows (global negatives, then the all-reduce
// of the replicated gradients) against one process's step over the same 2b rows. Every parameter's gradient,
// the dense layers' and the user and item tables', agrees to 1e-6 relative to its largest element (float
// rounding; measured ~1e-7). A loss normalised by the rank's batch instead of the global one doubles every
// gradient here and fails by far (checked by changing the divisor: relative difference 1).
TEST_CASE("Two-tower, 2 ranks: one step's gradients == one process's over the global batch", "[two_ranks]") {
  Communicator& comm = world();
  REQUIRE(comm.size() == 2);
  const Dataset& data = funnel::test::small_dataset();
  const Split split = leave_last_out(data);
  TrainConfig config = quick_config(32);
  config.embedding_sharding = "replicated";  // every rank holds whole tables, so their gradients compare whole
  const size_t b = config.batch_size, n = b * static_cast<size_t>(comm.size());
  REQUIRE(split.train.size() >= n);
  std::vector<uint32_t> users, items;
  std::vector<float> log_q;
  for (size_t i = 0; i < n; ++i) {
    users.push_back(split.train[i].user);
    items.push_back(split.train[i].item);
    log_q.push_back(-0.01f * static_cast<float>(i % 7));  // some correction, as fill_log_q gives
  }

  TwoTowerModel parallel(data, config);
  GlobalBatch global;
  global.items = items;
  global.log_q = log_q;
  global.first = b * static_cast<size_t>(comm.rank());
  global.count = b;
  const std::vector<uint32_t> my_users(users.begin() + static_cast<long>(global.first), users.begin() + static_cast<long>(global.first + b));
  const double parallel_loss = global_negatives_step(parallel, comm, my_users, global, config, {});
  GradientAllReduce(comm, parallel.replicated_parameters()).reduce();
  if (comm.rank() != 0) return;

  TwoTowerModel alone(data, config);
  const double alone_loss = two_tower_step(alone, users, items, log_q, config, /*backward=*/true);
  CHECK(parallel_loss == Approx(alone_loss).epsilon(1e-6));
  const std::vector<Parameter*> a = alone.parameters(), p = parallel.parameters();
  REQUIRE(a.size() == p.size());
  size_t tables = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    INFO(a[k]->name);
    REQUIRE(p[k]->name == a[k]->name);
    REQUIRE(p[k]->grad.size() == a[k]->grad.size());
    double largest = 0, worst = 0;
    for (size_t i = 0; i < a[k]->grad.size(); ++i) {
      largest = std::max(largest, std::fabs(static_cast<double>(a[k]->grad[i])));
      worst = std::max(worst, std::fabs(static_cast<double>(p[k]->grad[i]) - a[k]->grad[i]));
    }
    INFO("largest |grad| " << largest << ", largest |difference| " << worst);
    if (a[k]->sparse) ++tables;
    CHECK(largest > 0);  // the step reached it
    CHECK(worst <= 1e-6 * largest);
  }
  CHECK(tables >= 2);  // the user and item tables were among them
}
