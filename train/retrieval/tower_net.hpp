// A trainable tower: per-feature embedding bags -> [Linear -> ReLU]* -> Linear -> L2 normalisation.
// Its parameters are laid out as the SDK reads them, so view() hands the SDK the very same floats.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "train/retrieval/two_tower_config.hpp"
#include "train/data/dataset.hpp"
#include "funnel/tower.hpp"
#include "train/core/layers.hpp"
#include "train/core/parameter.hpp"
#include "train/core/rng.hpp"
#include "train/distributed/sharded_table.hpp"

namespace funnel::train {

// An augmented batch (the self-supervised task's views): a masked feature reads the feature's learned
// default input for every row; an unmasked categorical feature reads `offsets`/`ids` (lists over the batch
// positions 0..n-1, e.g. after value dropout) when they are given, the table's own lists otherwise.
struct TowerAugmentation {
  std::vector<uint8_t> masked;                 // per table feature
  std::vector<std::vector<uint32_t>> offsets;  // per table feature; empty: the table's lists
  std::vector<std::vector<uint32_t>> ids;
};

// One forward pass's inputs and intermediate values, so that several passes (the main batch and the two
// augmented views) can be alive together before their backward.
struct TowerPass {
  std::vector<uint32_t> rows;
  const TowerAugmentation* augmentation = nullptr;  // the caller keeps it alive until the backward
  std::vector<uint32_t> positions;                  // 0..n-1, for augmented lists
  std::vector<std::vector<float>> activations;      // a0 (input) .. aL (last linear's output)
  std::vector<float> output;
};

class TowerNet {
 public:
  // `first_feature`: the table's first feature index in the model's feature order. `default_inputs`: give
  // every feature a learned default input (an embedding row, or one value for a dense feature) that masked
  // features read; drawn after every other parameter, so a tower without them initialises as before.
  // `shard_over` (a distributed run with sharded tables, docs/distributed.md): every embedding table is sharded
  // by row over its ranks from the start; this rank allocates and keeps only its rows (see "A sharded tower" below).
  TowerNet(const EntityTable& table, size_t first_feature, const TrainConfig& config, const std::string& prefix, Rng& rng,
           bool default_inputs = false, Communicator* shard_over = nullptr);
  // A second encoder over the same table: shares `base`'s embedding tables (its shards' caches when sharded),
  // default inputs and first `shared_layers` linear layers, and owns the layers above them (from `rng`).
  TowerNet(const TowerNet& base, size_t shared_layers, const std::string& prefix, Rng& rng);

  size_t output_dim() const { return linears_.back().out(); }
  size_t layers() const { return linears_.size(); }
  // Output rows for the given entity rows ([rows.size(), output_dim()]); valid until the next forward.
  const float* forward(std::span<const uint32_t> rows);
  // Accumulates parameter gradients for the last forward's rows from d loss / d output.
  void backward(const float* d_output);
  // The last forward's output.
  const float* output() const { return pass_.output.data(); }

  // The same through an explicit pass, optionally augmented (needs default_inputs for masking).
  const float* forward(TowerPass& pass, std::span<const uint32_t> rows, const TowerAugmentation* augmentation);
  void backward(TowerPass& pass, const float* d_output);

  // The parameters this tower owns (a second encoder's shared ones belong to its base).
  std::vector<Parameter*> parameters();
  // Embedding table of input feature f (nullptr for a dense feature).
  const Parameter* embedding(size_t f) const { return embeddings_[f]; }
  TowerView view() const;

  // A sharded tower (`shard_over`): its tables' Parameters keep their names and shapes but hold no values;
  // every rank draws the whole tables' value sequence from `rng` as one process does and keeps its own rows, so
  // sharding changes no value, no rank ever holds a whole table, and the layers drawn after them start alike.
  // parameters() lists the shards in place of the tables; between fetch_rows and push_gradients the forward and
  // backward read and write the batch's rows in the shards' caches.
  bool sharded() const { return !shards_.empty(); }
  // Whether `p` is one of this tower's shards (exchanged by the row exchange, not all-reduced).
  bool is_shard(const Parameter* p) const;
  // The rows of the whole table `p` holds rows of: a shard's table's, a whole sparse parameter's own; 0 for a
  // parameter not of this tower.
  size_t whole_rows(const Parameter* p) const;
  // Stages in `exchange` the rows the features of entity rows `rows` read (every table, each once); the
  // exchange's fetch() brings them, its push_gradients() returns their gradients, with any other tower's.
  void stage_rows(RowExchange& exchange, std::span<const uint32_t> rows);
  // Collective: the rows the features of entity rows `rows` read, from their owners (this tower alone).
  void fetch_rows(std::span<const uint32_t> rows);
  // Collective: every table whole on `root`, for view() (evaluation, export); the other ranks keep shards only.
  void gather_tables(int root);
  // Bytes the row exchange sent to other ranks so far, over the tables.
  uint64_t bytes_sent() const;

 private:
  const EntityTable& table_;
  size_t first_feature_;
  std::vector<std::unique_ptr<Parameter>> storage_;
  std::vector<Parameter*> embeddings_;  // per table feature; nullptr for dense
  std::vector<Parameter*> defaults_;    // per table feature when default_inputs; empty otherwise
  std::vector<std::unique_ptr<ShardedTable>> shards_;  // per table feature when sharded (nullptr for dense)
  Communicator* comm_ = nullptr;                       // when sharded
  std::vector<EmbeddingBag> bags_;      // per categorical feature, in feature order
  std::vector<Linear> linears_;
  size_t input_dim_ = 0;

  TowerPass pass_;
  std::vector<float> grad_a_, grad_b_;

  Parameter* own(std::string name, std::vector<uint64_t> shape);
  // Embedding table `name` [rows, dim] drawn from N(0, 1), PyTorch's nn.Embedding default, as the reference
  // uses; sharded (comm_ set), the same draws, this rank's rows kept in shards_[feature].
  Parameter* own_embedding(std::string name, uint64_t rows, uint32_t dim, size_t feature, Rng& rng);
  void add_linear(const std::string& name, size_t in, size_t out, Rng& rng);
};

}  // namespace funnel::train
