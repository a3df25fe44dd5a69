// The config of a ranking (CTR) run: data protocol, model (DNN or CAN), loss, optimisation. Every field
// has a default; the effective config is written into the model file's metadata.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/data/ctr_data.hpp"

namespace funnel::train {

struct RankerConfig {
  // Data (the DIN protocol, ctr_data.hpp).
  uint32_t max_history = 50;
  uint32_t negatives = 1;
  uint64_t data_seed = 0;

  // Model: embeddings of the user features, the candidate's item features and the behaviour sequence's
  // pooled item features (the candidate and the behaviours share tables), then the MLP.
  std::string model = "can";                 // "dnn" or "can"
  std::vector<std::string> user_features;    // none by default (the reference's input is user-free)
  std::vector<std::string> item_features;    // empty: every categorical item feature
  // The item features pooled over the behaviour sequence: "*" is the candidate's (item_features); [] none.
  std::vector<std::string> behaviour_features = {"*"};
  uint32_t embedding_dim = 16;
  std::string pooling = "sum";               // of the behaviour embeddings over real positions: "sum" or "mean"
  std::vector<uint32_t> hidden = {200, 80};  // PReLU layers, then one logit

  // CAN (eq. 5-11). Pairs "induction:feed": an item feature of the candidate induces the micro-MLP, the
  // feed is a user feature or an item feature read along the behaviour sequence. Empty: every item
  // feature with its own behaviour sequence, as the official code pairs item and category.
  std::vector<std::string> coaction;
  uint32_t coaction_feed_dim = 16;                   // the micro-MLP's input: the feed embedding
  std::vector<uint32_t> coaction_layers = {8, 4};    // [16 -> 8 -> 4], the official weight_emb_w
  bool coaction_bias = false;                        // the official weight_emb_b = [0, 0]: no biases
  uint32_t coaction_orders = 3;
  // The paper's multi-level independence (section 3.3), each level a switch. Parameter independence: the
  // co-action parameters are tables of their own, apart from the representation embeddings; off, the
  // features' own embeddings serve (the paper's ablation): the induction feature's embedding is the
  // micro-MLP's parameters, so it is as wide as they are, and the feed is its feature's embedding.
  bool parameter_independence = true;
  // Combination independence (needs parameter independence): every pair has its own induction table and
  // its own feed table, on both sides, instead of one per feature shared by the pairs that name it.
  bool combination_independence = false;
  bool order_independence = false;  // separate micro-MLP parameters per order (eq. 11)

  // Loss.
  std::string loss = "bce";  // "bce", "focal" or "ghm"
  // Distillation from a teacher's click probabilities r (AutoFAS eq. 6, a pre-ranking student): the loss is
  // (1 - distillation) * loss + distillation * (r - p)^2. Only a run given teacher outputs uses it.
  float distillation = 0.0f;
  float focal_gamma = 2.0f;
  float focal_alpha = 0.25f;
  uint32_t ghm_bins = 30;       // GHM-C's paper configuration
  float ghm_momentum = 0.75f;

  // Optimisation.
  uint32_t batch_size = 128;
  uint32_t epochs = 3;
  float learning_rate = 1e-3f;
  std::string optimizer = "adam";  // "adam" (dense moments, as the reference) or "lazy_adam"
  // Embedding tables of at least sparse_optimizer_min_rows rows train with a sparse optimiser: a step costs
  // the rows its batch touches (docs/training.md, "Optimisers"); "none" keeps Adam on every table.
  // momentum_tail_adam matched dense Adam in docs/studies/sparse_optimiser.md; below 10,000 rows dense Adam's
  // pass over a table costs little, and small-data results stay as they were.
  std::string sparse_optimizer = "momentum_tail_adam";  // "none", "sparse_adam", "momentum_tail_adam" or "rowwise_adagrad"
  uint64_t sparse_optimizer_min_rows = 10000;
  float sparse_learning_rate = 0.0f;      // the sparse optimiser's rate; 0: learning_rate
  uint64_t seed = 0;               // initialisation and shuffling; the data's negatives follow data_seed
  uint32_t threads = 0;            // 0: every core
  // Under mpirun (docs/distributed.md): "sharded" spreads each embedding table's rows over the ranks (each
  // rank stores and optimises the rows it owns and fetches the rows its batch reads); "replicated" keeps every
  // table whole on every rank and sums the touched rows' gradients over the ranks. One process ignores it.
  std::string embedding_sharding = "sharded";

  CtrOptions ctr_options() const { return {max_history, negatives, data_seed}; }
};

// A co-action pair as the config names it.
struct CoActionPair {
  std::string induction, feed;
};
std::vector<CoActionPair> coaction_pairs(const RankerConfig& config);

RankerConfig ranker_config_from_json(const nlohmann::json& object, const std::string& where);
RankerConfig load_ranker_config(const std::string& path);
nlohmann::json ranker_config_to_json(const RankerConfig& config);

}  // namespace funnel::train
