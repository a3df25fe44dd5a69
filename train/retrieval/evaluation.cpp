#include "train/retrieval/evaluation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <span>

#include "train/core/errors.hpp"
#include "train/data/prepared.hpp"
#include "funnel/kernels.hpp"
#include "funnel/tower.hpp"

namespace funnel::train {

namespace {

double at(const std::vector<uint32_t>& ks, const std::vector<double>& values, uint32_t k) {
  for (size_t i = 0; i < ks.size(); ++i)
    if (ks[i] == k) return values[i];
  return std::nan("");
}

}  // namespace

double RetrievalMetrics::recall_at(uint32_t at_k) const { return at(k, recall, at_k); }
double RetrievalMetrics::ndcg_at(uint32_t at_k) const { return at(k, ndcg, at_k); }
double RetrievalMetrics::tail_recall_at(uint32_t at_k) const { return at(k, tail_recall, at_k); }
double RetrievalMetrics::tail_ndcg_at(uint32_t at_k) const { return at(k, tail_ndcg, at_k); }
double RetrievalMetrics::coverage_at(uint32_t at_k) const { return at(k, coverage, at_k); }

nlohmann::json RetrievalMetrics::to_json() const {
  nlohmann::json out = {{"users", users}, {"tail_users", tail_users}, {"mrr", mrr}};
  for (size_t i = 0; i < k.size(); ++i) {
    std::string suffix = "@";
    suffix.append(std::to_string(k[i]));
    out["recall" + suffix] = recall[i];
    out["ndcg" + suffix] = ndcg[i];
    out["hit_rate" + suffix] = hit_rate[i];
    out["coverage" + suffix] = coverage[i];
    out["tail_recall" + suffix] = tail_recall[i];
    out["tail_ndcg" + suffix] = tail_ndcg[i];
  }
  return out;
}

std::string RetrievalMetrics::summary() const {
  std::string out;
  char buffer[96];
  for (size_t i = 0; i < k.size(); ++i) {
    std::snprintf(buffer, sizeof buffer, "R@%u %.4f  NDCG@%u %.4f  tail R@%u %.4f  ", k[i], recall[i], k[i], ndcg[i], k[i], tail_recall[i]);
    out += buffer;
  }
  std::snprintf(buffer, sizeof buffer, "MRR %.4f  coverage@%u %.3f", mrr, k.back(), coverage.back());
  return out + buffer;
}

RetrievalMetrics evaluate_ranking(const Dataset& data, const Split& split, Holdout holdout, const std::vector<uint32_t>& ks,
                                  const UserScorer& scorer) {
  const size_t items = data.items.size();
  const uint32_t max_k = *std::max_element(ks.begin(), ks.end());

  std::vector<int64_t> held(data.users.size());
  for (size_t u = 0; u < held.size(); ++u) held[u] = holdout == Holdout::kTest ? split.test_item[u] : split.validation_item[u];
  // Per-user results, reduced in user order afterwards so the metrics do not depend on the thread count.
  std::vector<int64_t> rank(data.users.size(), -1);
  std::vector<std::vector<uint32_t>> top(data.users.size());

  // Users a block at a time: a prepared dataset's training items are read from disk per block
  // (Split::train_item_lists), so the exclusions never need memory that grows with the interactions.
  constexpr size_t kBlock = 4096;
  std::vector<uint32_t> starts, block_items;
  for (size_t first = 0; first < data.users.size(); first += kBlock) {
    const size_t last = std::min(data.users.size(), first + kBlock);
    if (split.train_item_lists) split.train_item_lists->read(first, last, &starts, &block_items);
#pragma omp parallel
    {
      std::vector<float> scores(items);
      std::vector<uint8_t> skip(items);
      std::vector<Hit> hits;
#pragma omp for schedule(dynamic, 16)
      for (size_t u = first; u < last; ++u) {
        if (held[u] < 0) continue;
        scorer(static_cast<uint32_t>(u), scores.data());
        std::fill(skip.begin(), skip.end(), 0);
        const std::span<const uint32_t> trained =
            split.train_item_lists ? std::span<const uint32_t>(block_items.data() + starts[u - first], starts[u - first + 1] - starts[u - first])
                                   : std::span<const uint32_t>(split.train_items[u]);
        for (uint32_t item : trained) skip[item] = 1;
        if (holdout == Holdout::kTest && split.validation_item[u] >= 0) skip[static_cast<size_t>(split.validation_item[u])] = 1;
        skip[static_cast<size_t>(held[u])] = 0;
        const float threshold = scores[static_cast<size_t>(held[u])];
        int64_t r = 0;
        for (size_t i = 0; i < items; ++i) r += !skip[i] && scores[i] > threshold;
        rank[u] = r;
        kernels::top_k(scores, max_k, skip, &hits);
        for (const Hit& hit : hits) top[u].push_back(hit.index);
      }
    }
  }

  RetrievalMetrics m;
  m.k = ks;
  m.recall.assign(ks.size(), 0.0);
  m.ndcg.assign(ks.size(), 0.0);
  m.tail_recall.assign(ks.size(), 0.0);
  m.tail_ndcg.assign(ks.size(), 0.0);
  std::vector<std::vector<uint8_t>> covered(ks.size(), std::vector<uint8_t>(items, 0));
  for (size_t u = 0; u < data.users.size(); ++u) {
    if (rank[u] < 0) continue;
    ++m.users;
    const bool tail = split.tail_item[static_cast<size_t>(held[u])];
    m.tail_users += tail;
    m.mrr += 1.0 / static_cast<double>(rank[u] + 1);
    for (size_t i = 0; i < ks.size(); ++i) {
      if (rank[u] < ks[i]) {
        m.recall[i] += 1.0;
        const double gain = 1.0 / std::log2(static_cast<double>(rank[u]) + 2.0);
        m.ndcg[i] += gain;
        m.tail_recall[i] += tail;
        m.tail_ndcg[i] += tail ? gain : 0.0;
      }
      for (size_t j = 0; j < top[u].size() && j < ks[i]; ++j) covered[i][top[u][j]] = 1;
    }
  }
  const double users = static_cast<double>(std::max<size_t>(m.users, 1));
  for (size_t i = 0; i < ks.size(); ++i) {
    m.recall[i] /= users;
    m.ndcg[i] /= users;
    m.tail_recall[i] /= static_cast<double>(std::max<size_t>(m.tail_users, 1));
    m.tail_ndcg[i] /= static_cast<double>(std::max<size_t>(m.tail_users, 1));
    m.coverage.push_back(static_cast<double>(std::count(covered[i].begin(), covered[i].end(), 1)) /
                         static_cast<double>(std::max<size_t>(items, 1)));
  }
  m.hit_rate = m.recall;
  m.mrr /= users;
  return m;
}

RetrievalMetrics evaluate_model(const Model& model, const Dataset& data, const Split& split, Holdout holdout,
                                const std::vector<uint32_t>& ks) {
  if (!model.has_retrieval() || model.catalogue_size() != data.items.size())
    throw TrainingError("the model's catalogue does not match the dataset's items");
  const TowerView& tower = model.user_tower();
  return evaluate_ranking(data, split, holdout, ks, [&](uint32_t user, float* scores) {
    thread_local EncodedFeatures encoded;
    thread_local std::vector<float> scratch, query;
    scratch.resize(tower.scratch_size());
    query.resize(tower.output_dim());
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
