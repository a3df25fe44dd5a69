#include "train/pre_ranking/stage_agreement.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "train/core/errors.hpp"
#include "train/core/rng.hpp"

namespace funnel::train {

namespace {

// Candidate positions by descending logit, ties to the earlier position.
std::vector<uint32_t> order_by(const std::vector<float>& logits) {
  std::vector<uint32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return logits[a] > logits[b]; });
  return order;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

}  // namespace

StageAgreement measure_stage_agreement(const Model& model, const CtrDataset& ctr, size_t requests, uint32_t candidates, uint64_t seed,
                                       const std::vector<uint32_t>& ks, const Model* two_tower) {
  if (!model.has_ranking() || !model.has_pre_ranking()) throw TrainingError("stage agreement: the model needs a pre-ranking and a ranking stage");
  const Dataset& data = ctr.data;
  const CtrInstances& instances = ctr.instances;
  const CtrSplit& test = instances.test;
  const size_t columns = model.ranker().item_columns;
  std::vector<uint32_t> item_ids;
  {
    const std::vector<std::string> keys(data.items.keys.begin(), data.items.keys.end());
    if (Status s = model.encode_items(keys, true, &item_ids); !s) throw TrainingError("stage agreement: " + s.to_string());
  }
  StageAgreement out;
  out.candidates = candidates;
  out.ks = ks;
  out.recall_of_top10.assign(ks.size(), 0.0);
  if (two_tower) {
    if (!two_tower->has_retrieval() || two_tower->catalogue_size() != data.items.size())
      throw TrainingError("stage agreement: the two-tower model's catalogue is not this dataset's items");
    out.two_tower_recall_of_top10.assign(ks.size(), 0.0);
  }
  std::vector<uint32_t> candidate_rows(candidates);
  std::vector<float> dot_scores(candidates), query, scratch_tower;
  std::vector<double> dot_times;
  Rng rng(seed);
  RankScratch scratch;
  EncodedFeatures user;
  std::vector<uint32_t> behaviours, candidate_ids(size_t{candidates} * columns);
  std::vector<float> teacher(candidates), student(candidates);
  std::vector<double> pre_times, rank_times;
  const double per_1000 = 1000.0 / candidates;
  using Clock = std::chrono::steady_clock;
  for (size_t i = 0; i < test.size() && out.requests < requests; ++i) {
    if (test.label[i] != 1) continue;
    encode_row(data, data.users, test.user[i], &user);
    const uint32_t h = test.history[i];
    behaviours.clear();
    for (uint32_t k = instances.history_offsets[h]; k < instances.history_offsets[h + 1]; ++k) {
      const uint32_t* row = item_ids.data() + size_t{instances.history_items[k]} * columns;
      behaviours.insert(behaviours.end(), row, row + columns);
    }
    for (uint32_t c = 0; c < candidates; ++c) {
      candidate_rows[c] = static_cast<uint32_t>(rng.below(data.items.size()));
      const uint32_t* row = item_ids.data() + size_t{candidate_rows[c]} * columns;
      std::copy(row, row + columns, candidate_ids.begin() + static_cast<std::ptrdiff_t>(size_t{c} * columns));
    }
    const RankInput input{&user, behaviours.data(), behaviours.size() / columns, candidate_ids.data(), candidates};
    auto start = Clock::now();
    rank_logits(model.pre_ranker(), input, &scratch, student.data());
    pre_times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count() * per_1000);
    start = Clock::now();
    rank_logits(model.ranker(), input, &scratch, teacher.data());
    rank_times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count() * per_1000);
    const std::vector<uint32_t> by_teacher = order_by(teacher);
    const auto add_recalls = [&](const std::vector<float>& scores, std::vector<double>* recalls) {
      const std::vector<uint32_t> by_scores = order_by(scores);
      std::vector<uint32_t> rank_of(candidates);
      for (uint32_t r = 0; r < candidates; ++r) rank_of[by_scores[r]] = r;
      for (size_t k = 0; k < ks.size(); ++k) {
        size_t found = 0;
        for (uint32_t r = 0; r < std::min<uint32_t>(10, candidates); ++r) found += rank_of[by_teacher[r]] < ks[k];
        (*recalls)[k] += static_cast<double>(found) / std::min<uint32_t>(10, candidates);
      }
    };
    add_recalls(student, &out.recall_of_top10);
    if (two_tower) {
      // The user tower once, then one inner product per candidate with its catalogue row.
      start = Clock::now();
      const TowerView& tower = two_tower->user_tower();
      scratch_tower.resize(tower.scratch_size());
      query.resize(tower.output_dim());
      tower_forward(tower, user, scratch_tower.data(), query.data());
      const float* rows = two_tower->catalogue_embeddings();
      for (uint32_t c = 0; c < candidates; ++c)
        dot_scores[c] = kernels::dot(rows + size_t{candidate_rows[c]} * query.size(), query.data(), query.size());
      dot_times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count() * per_1000);
      add_recalls(dot_scores, &out.two_tower_recall_of_top10);
    }
    ++out.requests;
  }
  for (double& r : out.recall_of_top10) r /= std::max<size_t>(out.requests, 1);
  for (double& r : out.two_tower_recall_of_top10) r /= std::max<size_t>(out.requests, 1);
  out.two_tower_us = median(dot_times);
  out.pre_ranking_us = median(pre_times);
  out.ranking_us = median(rank_times);
  return out;
}

}  // namespace funnel::train
