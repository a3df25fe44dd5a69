// Writes a trained model as a .funnel file (sdk/schema/funnel.fbs).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "train/data/dataset.hpp"
#include "train/retrieval/two_tower.hpp"

namespace funnel::train {

using Metadata = std::vector<std::pair<std::string, std::string>>;

// The features (vocabularies and encoding rules), both towers' parameters, and the item catalogue: every
// item of the dataset, in table order, embedded by the SDK's own tower code.
std::vector<uint8_t> export_two_tower(const Dataset& data, const TwoTowerModel& model, const TrainConfig& config,
                                      const Metadata& metadata);

class RankerModel;

struct RetrievalPart {
  const TwoTowerModel& model;
  const TrainConfig& config;
};

// One file with whichever stages are given (both may sit side by side: the features are the dataset's
// in both). At least one should be given.
std::vector<uint8_t> export_funnel(const Dataset& data, const RetrievalPart* retrieval, const RankerModel* ranker,
                                   const Metadata& metadata);
// The same with a pre-ranking stage: `pre_ranker`, the AutoFAS student, a RankerModel without co-action
// pairs that may read a subset of the user and item features. The file's item table is the ranking stage's
// (the student's own when there is no ranking stage); every item feature the student reads must be one of
// its columns, else TrainingError naming the feature. Its tensors are named "pre_ranking/...".
std::vector<uint8_t> export_funnel(const Dataset& data, const RetrievalPart* retrieval, const RankerModel* ranker,
                                   const RankerModel* pre_ranker, const Metadata& metadata);

// The features, the item table (every item of the dataset, in table order, with the ranking's item
// feature ids) and the ranking stage.
std::vector<uint8_t> export_ranker(const Dataset& data, const RankerModel& model, const Metadata& metadata);

}  // namespace funnel::train
