// One JSON config per training run. Every hyper-parameter has a default; the effective config, defaults
// included, is written into the model file's metadata.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/core/lr_schedule.hpp"

namespace funnel::train {

struct TrainConfig {
  // Model.
  uint32_t embedding_dim = 16;          // per feature
  std::vector<uint32_t> hidden = {64};  // ReLU layers of each tower
  uint32_t output_dim = 32;             // the shared embedding space
  float temperature = 0.05f;

  // Loss: in-batch sampled softmax with logQ correction (CBNS eq. 3-4).
  std::string logq = "counts";  // "counts" (training frequencies), "streaming" (one-pass estimate), "none"
  float streaming_alpha = 0.01f;
  uint32_t streaming_buckets = 1u << 18;
  bool mask_accidental_hits = true;

  // Cross-Batch Negative Sampling (eq. 9).
  std::string negatives = "in_batch";  // "in_batch" or "cbns"
  uint32_t memory_size = 2048;         // M: bank entries
  uint32_t cbns_warmup_steps = 500;    // in-batch only before this many steps...
  bool cbns_auto_warmup = false;       // ...or, instead, until the feature drift falls below drift_threshold
  float drift_threshold = 0.02f;       // mean per-item drift over the largest drift_deltas step
  bool bank_logq = true;               // eq. 9: bank entries keep and subtract their log q
  // On by default: the item tower learns from the in-batch columns' softmax alone (the user tower from the full
  // eq. 9 softmax). The paper's form (false: the item tower learns from the bank's columns too) collapses on
  // every dataset of docs/studies/retrieval.md; it stays one setting away.
  bool cbns_balanced_item_gradient = true;

  // Feature drift monitor (eq. 5).
  uint32_t drift_sample = 256;                // items probed (0 turns the monitor off)
  uint32_t drift_interval = 100;              // steps between probes
  std::vector<uint32_t> drift_deltas = {1, 5, 10};

  // Self-supervised auxiliary task for the item tower (Yao et al., CIKM 2021; docs/training.md): L = L_main +
  // ssl_alpha * L_self.
  std::string ssl = "none";          // "none", "rfm", "cfm" (masking patterns), "spread_out", "spread_out_square"
  float ssl_alpha = 0.1f;            // eq. 5 (the best of 0.1, 0.3, 1 in docs/studies/ssl.md)
  float ssl_temperature = 0.2f;      // tau of eq. 3 (not used by spread_out_square)
  uint32_t ssl_batch_size = 0;       // items per step for L_self (0: batch_size)
  float ssl_dropout = 0.1f;          // per-value dropout of multi-valued item features, after masking
  std::string ssl_share_mlp = "full";   // G = H ("full"), all but the last layer shared ("partial"), embeddings only ("none")
  std::string ssl_sampling = "uniform";  // L_self's items: "uniform" over the catalogue, or "training" (by interactions)

  // Optimisation.
  float train_fraction = 1.0f;  // train on this share of the training interactions (seeded), to study sparse data
  uint32_t batch_size = 256;
  // Rows of the shuffle buffer when training streams a prepared folder (interaction_stream.hpp): 16 bytes
  // each, so the default holds 16 MiB; at least the training rows (with one shard) shuffles as in memory.
  uint64_t shuffle_buffer = uint64_t{1} << 20;
  uint32_t epochs = 20;
  float learning_rate = 1e-3f;
  std::string optimizer = "adam";  // "adam" (dense moments, as the reference) or "lazy_adam" (touched embedding rows only)
  // Embedding tables of at least sparse_optimizer_min_rows rows train with a sparse optimiser: a step costs
  // the rows its batch touches (docs/training.md, "Optimisers"); "none" keeps Adam on every table.
  // momentum_tail_adam matched dense Adam in docs/studies/sparse_optimiser.md; below 10,000 rows dense Adam's
  // pass over a table costs little, and small-data results stay as they were.
  std::string sparse_optimizer = "momentum_tail_adam";  // "none", "sparse_adam", "momentum_tail_adam" or "rowwise_adagrad"
  uint64_t sparse_optimizer_min_rows = 10000;
  float sparse_learning_rate = 0.0f;      // the sparse optimiser's rate; 0: learning_rate
  std::string lr_schedule = "constant";  // "constant", "cosine" or "linear" decay to lr_min_ratio
  uint32_t lr_warmup_steps = 0;          // linear warm-up from 0
  float lr_min_ratio = 0.0f;
  uint32_t early_stopping_patience = 0;  // stop after this many epochs without a better validation score (0: off)
  uint64_t seed = 0;
  uint32_t threads = 0;  // 0: every core
  // Under mpirun (docs/distributed.md; batch_size is then per rank, the global batch batch_size x ranks): the
  // embedding tables "sharded" (by row over the ranks, touched rows exchanged each step) or "replicated"
  // (whole on every rank, gradients all-reduced). No effect on one process.
  std::string embedding_sharding = "sharded";

  // Evaluation.
  std::vector<uint32_t> eval_k = {10, 50};
  uint32_t select_k = 50;  // the epoch kept is the one with the best validation Recall@select_k

  // Export: the catalogue's precision. "f32"; "f16" (half the bytes); "int8" (per-row scales: the SDK scans
  // a quarter of the bytes, then re-scores an over-fetched shortlist against exact f32 rows kept beside).
  std::string catalogue_precision = "f32";
};

// Throws ConfigError naming `where` and the field for unknown keys, wrong types and bad values.
TrainConfig config_from_json(const nlohmann::json& object, const std::string& where);
TrainConfig load_config(const std::string& path);
LrSchedule lr_schedule_of(const TrainConfig& config);
nlohmann::json config_to_json(const TrainConfig& config);

}  // namespace funnel::train
