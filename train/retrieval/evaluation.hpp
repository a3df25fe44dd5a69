// Retrieval metrics on the leave-last-out split, computed through the SDK on an exported model, so
// the numbers a user sees after training are the SDK's numbers.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/data/dataset.hpp"
#include "funnel/model.hpp"
#include "train/data/split.hpp"

namespace funnel::train {

enum class Holdout { kValidation, kTest };

struct RetrievalMetrics {
  std::vector<uint32_t> k;
  std::vector<double> recall;       // Recall@k: held-out items in the top k / held-out items
  std::vector<double> ndcg;         // NDCG@k
  std::vector<double> hit_rate;     // HitRate@k: users with a held-out item in the top k
  std::vector<double> coverage;     // share of the catalogue that appears in some user's top k
  std::vector<double> tail_recall;  // Recall@k over held-out tail items (Split::tail_item)
  std::vector<double> tail_ndcg;    // NDCG@k over the same
  double mrr = 0;                   // mean 1 / (rank + 1), over the full catalogue
  size_t users = 0;
  size_t tail_users = 0;

  double recall_at(uint32_t k) const;
  double ndcg_at(uint32_t k) const;
  double tail_recall_at(uint32_t k) const;
  double tail_ndcg_at(uint32_t k) const;
  double coverage_at(uint32_t k) const;
  nlohmann::json to_json() const;
  std::string summary() const;  // "R@10 0.0712  R@50 0.2577  NDCG@10 0.0348 ..."
};

// Scores every catalogue item for a user: writes catalogue-size scores. Called from several threads
// at once, each with its own `scores`.
using UserScorer = std::function<void(uint32_t user, float* scores)>;

// Full-catalogue ranking: for each user with a held-out item, rank = the number of items scoring
// strictly higher, the user's training items (and for test, the validation item) removed. With one
// held-out item per user, Recall@k and HitRate@k are the same number.
RetrievalMetrics evaluate_ranking(const Dataset& data, const Split& split, Holdout holdout, const std::vector<uint32_t>& ks,
                                  const UserScorer& scorer);

// The model's user tower and catalogue, through the SDK. The catalogue must be the dataset's items in
// table order (what export_two_tower writes).
RetrievalMetrics evaluate_model(const Model& model, const Dataset& data, const Split& split, Holdout holdout,
                                const std::vector<uint32_t>& ks);

// The most-popular baseline: every user gets items ranked by training count.
RetrievalMetrics evaluate_most_popular(const Dataset& data, const Split& split, Holdout holdout, const std::vector<uint32_t>& ks);

}  // namespace funnel::train
