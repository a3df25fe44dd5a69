// How well a pre-ranking stage keeps what the ranking stage would pick, and what each costs, measured
// through the SDK on an exported file (the AutoFAS study's quality and latency axes).
#pragma once

#include <cstdint>
#include <vector>

#include "train/data/ctr_data.hpp"
#include "funnel/model.hpp"

namespace funnel::train {

struct StageAgreement {
  size_t requests = 0;
  uint32_t candidates = 0;
  // Of the ranking stage's top 10 among the candidates, the share the pre-ranking stage puts in its top K,
  // for K in ks (the pre-ranking stage passes its top K on to ranking).
  std::vector<uint32_t> ks;
  std::vector<double> recall_of_top10;
  // Median SDK time of one request (user and behaviours encoded once, then every candidate scored), in
  // microseconds per 1,000 candidates, on this machine's kernels.
  double pre_ranking_us = 0, ranking_us = 0;
  // The same for a two-tower model used as the pre-ranker (user tower, then one inner product per
  // candidate), when one is given.
  std::vector<double> two_tower_recall_of_top10;
  double two_tower_us = 0;
};

// Requests: the test split's first `requests` positives, each user with its history against `candidates`
// items drawn uniformly from the item table (seeded). The model needs both stages.
// `two_tower`, when given, is a retrieval model of the same dataset (its catalogue in item-table order).
StageAgreement measure_stage_agreement(const Model& model, const CtrDataset& ctr, size_t requests, uint32_t candidates, uint64_t seed,
                                       const std::vector<uint32_t>& ks = {10, 50, 100}, const Model* two_tower = nullptr);

}  // namespace funnel::train
