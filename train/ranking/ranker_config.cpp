#include "train/ranking/ranker_config.hpp"

#include "train/core/config_io.hpp"
#include "train/core/errors.hpp"

namespace funnel::train {

namespace {

// Every field once: reading, writing and the unknown-key check all use it.
template <typename Visit>
void for_each_field(RankerConfig& c, Visit&& visit) {
  visit("max_history", c.max_history);
  visit("negatives", c.negatives);
  visit("data_seed", c.data_seed);
  visit("model", c.model);
  visit("user_features", c.user_features);
  visit("item_features", c.item_features);
  visit("behaviour_features", c.behaviour_features);
  visit("embedding_dim", c.embedding_dim);
  visit("pooling", c.pooling);
  visit("hidden", c.hidden);
  visit("coaction", c.coaction);
  visit("coaction_feed_dim", c.coaction_feed_dim);
  visit("coaction_layers", c.coaction_layers);
  visit("coaction_bias", c.coaction_bias);
  visit("coaction_orders", c.coaction_orders);
  visit("parameter_independence", c.parameter_independence);
  visit("combination_independence", c.combination_independence);
  visit("order_independence", c.order_independence);
  visit("loss", c.loss);
  visit("distillation", c.distillation);
  visit("focal_gamma", c.focal_gamma);
  visit("focal_alpha", c.focal_alpha);
  visit("ghm_bins", c.ghm_bins);
  visit("ghm_momentum", c.ghm_momentum);
  visit("batch_size", c.batch_size);
  visit("epochs", c.epochs);
  visit("learning_rate", c.learning_rate);
  visit("optimizer", c.optimizer);
  visit("sparse_optimizer", c.sparse_optimizer);
  visit("sparse_optimizer_min_rows", c.sparse_optimizer_min_rows);
  visit("sparse_learning_rate", c.sparse_learning_rate);
  visit("seed", c.seed);
  visit("threads", c.threads);
  visit("embedding_sharding", c.embedding_sharding);
}

}  // namespace

std::vector<CoActionPair> coaction_pairs(const RankerConfig& config) {
  std::vector<CoActionPair> pairs;
  for (const std::string& text : config.coaction) {
    const size_t colon = text.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == text.size() || text.find(':', colon + 1) != std::string::npos)
      throw ConfigError("coaction pair '" + text + "': expected 'induction:feed', e.g. 'item_id:item_id'");
    pairs.push_back({text.substr(0, colon), text.substr(colon + 1)});
  }
  return pairs;
}

RankerConfig ranker_config_from_json(const nlohmann::json& object, const std::string& where) {
  config_io::check_known_keys(object, ranker_config_to_json(RankerConfig{}), where);
  RankerConfig c;
  for_each_field(c, [&](const char* key, auto& member) { config_io::read(object, key, &member, where); });

  const auto require = [&where](bool ok, const char* message) {
    if (!ok) throw ConfigError(where + ": " + message);
  };
  require(c.max_history >= 1 && c.max_history <= 100000, "max_history must be in 1..100000");
  require(c.negatives >= 1 && c.negatives <= 1000, "negatives must be in 1..1000");
  require(c.model == "dnn" || c.model == "can", "model must be 'dnn' or 'can'");
  require(c.embedding_dim >= 1 && c.embedding_dim <= 4096, "embedding_dim must be in 1..4096");
  require(c.pooling == "sum" || c.pooling == "mean", "pooling must be 'sum' or 'mean'");
  for (uint32_t h : c.hidden) require(h >= 1 && h <= 65536, "hidden sizes must be in 1..65536");
  require(c.coaction_feed_dim >= 1 && c.coaction_feed_dim <= 4096, "coaction_feed_dim must be in 1..4096");
  require(!c.coaction_layers.empty() && c.coaction_layers.size() <= 16, "coaction_layers must list 1 to 16 layer sizes");
  for (uint32_t h : c.coaction_layers) require(h >= 1 && h <= 4096, "coaction_layers sizes must be in 1..4096");
  require(c.coaction_orders >= 1 && c.coaction_orders <= 8, "coaction_orders must be in 1..8");
  try {
    coaction_pairs(c);
  } catch (const ConfigError& e) {
    throw ConfigError(where + ": " + e.what());
  }
  require(c.model == "can" || c.coaction.empty(), "coaction pairs need model 'can'");
  require(c.parameter_independence || !c.combination_independence,
          "combination_independence needs parameter_independence (without it a feature has one embedding, which every pair "
          "naming the feature reads)");
  require(c.loss == "bce" || c.loss == "focal" || c.loss == "ghm", "loss must be 'bce', 'focal' or 'ghm'");
  require(c.distillation >= 0.0f && c.distillation <= 1.0f, "distillation must be in [0, 1]");
  for (const std::string& name : c.behaviour_features)
    require(name != "*" || c.behaviour_features.size() == 1, "behaviour_features: \"*\" stands alone (the candidate's item features)");
  require(c.focal_gamma >= 0.0f, "focal_gamma must be at least 0");
  require(c.focal_alpha > 0.0f && c.focal_alpha < 1.0f, "focal_alpha must be in (0, 1)");
  require(c.ghm_bins >= 1 && c.ghm_bins <= 10000, "ghm_bins must be in 1..10000");
  require(c.ghm_momentum >= 0.0f && c.ghm_momentum < 1.0f, "ghm_momentum must be in [0, 1)");
  require(c.batch_size >= 1, "batch_size must be at least 1");
  require(c.epochs >= 1, "epochs must be at least 1");
  require(c.learning_rate > 0.0f, "learning_rate must be positive");
  require(c.optimizer == "adam" || c.optimizer == "lazy_adam", "optimizer must be 'adam' or 'lazy_adam'");
  require(c.sparse_optimizer == "none" || c.sparse_optimizer == "sparse_adam" || c.sparse_optimizer == "momentum_tail_adam" ||
              c.sparse_optimizer == "rowwise_adagrad",
          "sparse_optimizer must be 'none', 'sparse_adam', 'momentum_tail_adam' or 'rowwise_adagrad'");
  require(c.sparse_learning_rate >= 0.0f, "sparse_learning_rate must be 0 (learning_rate) or positive");
  require(c.embedding_sharding == "sharded" || c.embedding_sharding == "replicated", "embedding_sharding must be 'sharded' or 'replicated'");
  return c;
}

RankerConfig load_ranker_config(const std::string& path) {
  return ranker_config_from_json(config_io::parse_file(path), path);
}

nlohmann::json ranker_config_to_json(const RankerConfig& config) {
  nlohmann::json out = nlohmann::json::object();
  RankerConfig copy = config;
  for_each_field(copy, [&out](const char* key, auto& member) { out[key] = config_io::to_json_value(member); });
  return out;
}

}  // namespace funnel::train
