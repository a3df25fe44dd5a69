#include "evaluate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "errors.hpp"
#include "funnel/tower.hpp"

namespace funnel::train {

double RetrievalMetrics::recall_at(uint32_t at) const {
  for (size_t i = 0; i < k.size(); ++i)
    if (k[i] == at) return recall[i];
  return std::nan("");
}

double RetrievalMetrics::ndcg_at(uint32_t at) const {
  for (size_t i = 0; i < k.size(); ++i)
    if (k[i] == at) return ndcg[i];
  return std::nan("");
}

nlohmann::json RetrievalMetrics::to_json() const {
  nlohmann::json out = {{"users", users}};
  for (size_t i = 0; i < k.size(); ++i) {
    out["recall@" + std::to_string(k[i])] = recall[i];
    out["ndcg@" + std::to_string(k[i])] = ndcg[i];
  }
  return out;
}

std::string RetrievalMetrics::summary() const {
  std::string out;
  char buffer[64];
  for (size_t i = 0; i < k.size(); ++i) {
    std::snprintf(buffer, sizeof buffer, "%sRecall@%u %.4f  NDCG@%u %.4f", i ? "  " : "", k[i], recall[i], k[i], ndcg[i]);
    out += buffer;
  }
  return out;
}

RetrievalMetrics evaluate_ranking(const Dataset& data, const Split& split, Holdout holdout, const std::vector<uint32_t>& ks,
                                  const UserScorer& scorer) {
  RetrievalMetrics metrics;
  metrics.k = ks;
  metrics.recall.assign(ks.size(), 0.0);
  metrics.ndcg.assign(ks.size(), 0.0);
  std::vector<float> scores(data.items.size());
  for (size_t u = 0; u < data.users.size(); ++u) {
    const int64_t held = holdout == Holdout::kTest ? split.test_item[u] : split.validation_item[u];
    if (held < 0) continue;
    scorer(static_cast<uint32_t>(u), scores.data());
    const float threshold = scores[static_cast<size_t>(held)];
    size_t rank = 0;
    for (float s : scores) rank += s > threshold;
    const auto excluded = [&](size_t item) { return static_cast<int64_t>(item) != held && scores[item] > threshold; };
    for (uint32_t item : split.train_items[u]) rank -= excluded(item);
    if (holdout == Holdout::kTest && split.validation_item[u] >= 0 &&
        !std::binary_search(split.train_items[u].begin(), split.train_items[u].end(), static_cast<uint32_t>(split.validation_item[u])))
      rank -= excluded(static_cast<size_t>(split.validation_item[u]));
    for (size_t i = 0; i < ks.size(); ++i) {
      if (rank < ks[i]) {
        metrics.recall[i] += 1.0;
        metrics.ndcg[i] += 1.0 / std::log2(static_cast<double>(rank) + 2.0);
      }
    }
    ++metrics.users;
  }
  for (size_t i = 0; i < ks.size(); ++i) {
    metrics.recall[i] /= std::max<size_t>(metrics.users, 1);
    metrics.ndcg[i] /= std::max<size_t>(metrics.users, 1);
  }
  return metrics;
}

RetrievalMetrics evaluate_model(const Model& model, const Dataset& data, const Split& split, Holdout holdout,
                                const std::vector<uint32_t>& ks) {
  if (!model.has_retrieval() || model.catalogue_size() != data.items.size())
    throw TrainingError("the model's catalogue does not match the dataset's items");
  const TowerView& tower = model.user_tower();
  std::vector<float> scratch(tower.scratch_size()), query(tower.output_dim());
  EncodedFeatures encoded;
  return evaluate_ranking(data, split, holdout, ks, [&](uint32_t user, float* scores) {
    encode_row(data, data.users, user, &encoded);
    tower_forward(tower, encoded, scratch.data(), query.data());
    model.score_catalogue(query.data(), scores);
  });
}

RetrievalMetrics evaluate_most_popular(const Dataset& data, const Split& split, Holdout holdout, const std::vector<uint32_t>& ks) {
  return evaluate_ranking(data, split, holdout, ks, [&](uint32_t, float* scores) {
    for (size_t i = 0; i < data.items.size(); ++i) scores[i] = static_cast<float>(split.item_train_count[i]);
  });
}

}  // namespace funnel::train
