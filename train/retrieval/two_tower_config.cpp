#include "train/retrieval/two_tower_config.hpp"

#include "train/core/config_io.hpp"
#include "train/core/errors.hpp"
#include "funnel/precision.hpp"

namespace funnel::train {

namespace {

using config_io::read;

// Every field once: its JSON name and its member. Reading, writing and the unknown-key check all use it.
template <typename Visit>
void for_each_field(TrainConfig& c, Visit&& visit) {
  visit("embedding_dim", c.embedding_dim);
  visit("hidden", c.hidden);
  visit("output_dim", c.output_dim);
  visit("temperature", c.temperature);
  visit("logq", c.logq);
  visit("streaming_alpha", c.streaming_alpha);
  visit("streaming_buckets", c.streaming_buckets);
  visit("mask_accidental_hits", c.mask_accidental_hits);
  visit("negatives", c.negatives);
  visit("memory_size", c.memory_size);
  visit("cbns_warmup_steps", c.cbns_warmup_steps);
  visit("cbns_auto_warmup", c.cbns_auto_warmup);
  visit("drift_threshold", c.drift_threshold);
  visit("bank_logq", c.bank_logq);
  visit("cbns_balanced_item_gradient", c.cbns_balanced_item_gradient);
  visit("drift_sample", c.drift_sample);
  visit("drift_interval", c.drift_interval);
  visit("drift_deltas", c.drift_deltas);
  visit("ssl", c.ssl);
  visit("ssl_alpha", c.ssl_alpha);
  visit("ssl_temperature", c.ssl_temperature);
  visit("ssl_batch_size", c.ssl_batch_size);
  visit("ssl_dropout", c.ssl_dropout);
  visit("ssl_share_mlp", c.ssl_share_mlp);
  visit("ssl_sampling", c.ssl_sampling);
  visit("train_fraction", c.train_fraction);
  visit("batch_size", c.batch_size);
  visit("shuffle_buffer", c.shuffle_buffer);
  visit("epochs", c.epochs);
  visit("learning_rate", c.learning_rate);
  visit("optimizer", c.optimizer);
  visit("sparse_optimizer", c.sparse_optimizer);
  visit("sparse_optimizer_min_rows", c.sparse_optimizer_min_rows);
  visit("sparse_learning_rate", c.sparse_learning_rate);
  visit("lr_schedule", c.lr_schedule);
  visit("lr_warmup_steps", c.lr_warmup_steps);
  visit("lr_min_ratio", c.lr_min_ratio);
  visit("early_stopping_patience", c.early_stopping_patience);
  visit("seed", c.seed);
  visit("threads", c.threads);
  visit("embedding_sharding", c.embedding_sharding);
  visit("eval_k", c.eval_k);
  visit("select_k", c.select_k);
  visit("catalogue_precision", c.catalogue_precision);
}

}  // namespace

TrainConfig config_from_json(const nlohmann::json& object, const std::string& where) {
  config_io::check_known_keys(object, config_to_json(TrainConfig{}), where);

  TrainConfig c;
  for_each_field(c, [&](const char* key, auto& member) { read(object, key, &member, where); });

  const auto require = [&where](bool ok, const char* message) {
    if (!ok) throw ConfigError(where + ": " + message);
  };
  require(c.embedding_dim >= 1 && c.embedding_dim <= 4096, "embedding_dim must be in 1..4096");
  require(c.output_dim >= 1 && c.output_dim <= 4096, "output_dim must be in 1..4096");
  for (uint32_t h : c.hidden) require(h >= 1 && h <= 65536, "hidden sizes must be in 1..65536");
  require(c.temperature > 0.0f, "temperature must be positive");
  require(c.logq == "counts" || c.logq == "streaming" || c.logq == "none", "logq must be 'counts', 'streaming' or 'none'");
  require(c.streaming_alpha > 0.0f && c.streaming_alpha <= 1.0f, "streaming_alpha must be in (0, 1]");
  require(c.streaming_buckets >= 1, "streaming_buckets must be at least 1");
  require(c.negatives == "in_batch" || c.negatives == "cbns", "negatives must be 'in_batch' or 'cbns'");
  require(c.negatives != "cbns" || c.memory_size >= 1, "memory_size must be at least 1 with CBNS");
  require(!c.cbns_auto_warmup || c.drift_sample > 0, "cbns_auto_warmup needs the drift monitor (drift_sample > 0)");
  require(c.drift_threshold > 0.0f, "drift_threshold must be positive");
  require(!c.drift_deltas.empty(), "drift_deltas must list at least one step count");
  for (uint32_t d : c.drift_deltas) require(d >= 1 && d < c.drift_interval, "drift_deltas must be in 1..drift_interval-1");
  require(c.ssl == "none" || c.ssl == "rfm" || c.ssl == "cfm" || c.ssl == "spread_out" || c.ssl == "spread_out_square",
          "ssl must be 'none', 'rfm', 'cfm', 'spread_out' or 'spread_out_square'");
  require(c.ssl_alpha >= 0.0f, "ssl_alpha must not be negative");
  require(c.ssl_temperature > 0.0f, "ssl_temperature must be positive");
  require(c.ssl_batch_size != 1, "ssl_batch_size must be 0 (the batch size) or at least 2");
  require(c.ssl_dropout >= 0.0f && c.ssl_dropout < 1.0f, "ssl_dropout must be in [0, 1)");
  require(c.ssl_share_mlp == "full" || c.ssl_share_mlp == "partial" || c.ssl_share_mlp == "none",
          "ssl_share_mlp must be 'full', 'partial' or 'none'");
  require(c.ssl_sampling == "uniform" || c.ssl_sampling == "training", "ssl_sampling must be 'uniform' or 'training'");
  require(c.train_fraction > 0.0f && c.train_fraction <= 1.0f, "train_fraction must be in (0, 1]");
  require(c.batch_size >= 2, "batch_size must be at least 2 (in-batch negatives)");
  require(c.shuffle_buffer >= 1, "shuffle_buffer must be at least 1 row");
  require(c.epochs >= 1, "epochs must be at least 1");
  require(c.learning_rate > 0.0f, "learning_rate must be positive");
  require(c.optimizer == "adam" || c.optimizer == "lazy_adam", "optimizer must be 'adam' or 'lazy_adam'");
  require(c.sparse_optimizer == "none" || c.sparse_optimizer == "sparse_adam" || c.sparse_optimizer == "momentum_tail_adam" ||
              c.sparse_optimizer == "rowwise_adagrad",
          "sparse_optimizer must be 'none', 'sparse_adam', 'momentum_tail_adam' or 'rowwise_adagrad'");
  require(c.sparse_learning_rate >= 0.0f, "sparse_learning_rate must be 0 (learning_rate) or positive");
  require(c.embedding_sharding == "sharded" || c.embedding_sharding == "replicated", "embedding_sharding must be 'sharded' or 'replicated'");
  require(c.lr_schedule == "constant" || c.lr_schedule == "cosine" || c.lr_schedule == "linear",
          "lr_schedule must be 'constant', 'cosine' or 'linear'");
  require(c.lr_min_ratio >= 0.0f && c.lr_min_ratio <= 1.0f, "lr_min_ratio must be in [0, 1]");
  require(!c.eval_k.empty(), "eval_k must list at least one K");
  for (uint32_t k : c.eval_k) require(k >= 1, "eval_k values must be at least 1");
  require(c.select_k >= 1, "select_k must be at least 1");
  Precision precision;
  require(parse_precision(c.catalogue_precision, &precision), "catalogue_precision must be 'f32', 'f16' or 'int8'");
  return c;
}

TrainConfig load_config(const std::string& path) { return config_from_json(config_io::parse_file(path), path); }

nlohmann::json config_to_json(const TrainConfig& config) {
  nlohmann::json out = nlohmann::json::object();
  TrainConfig copy = config;
  for_each_field(copy, [&out](const char* key, auto& member) { out[key] = config_io::to_json_value(member); });
  return out;
}

LrSchedule lr_schedule_of(const TrainConfig& config) {
  return {config.learning_rate, config.lr_schedule, static_cast<long>(config.lr_warmup_steps), config.lr_min_ratio};
}

}  // namespace funnel::train
