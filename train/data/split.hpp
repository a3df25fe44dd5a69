// Per-user, time-ordered leave-last-out: each user's last interaction is the test item, the one before
// it validation, the rest training.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "train/data/dataset.hpp"

namespace funnel::train {

class TrainItemLists;  // train/data/prepared.hpp

struct Split {
  std::vector<Interaction> train;
  std::vector<int64_t> validation_item;  // per user; -1 when the user has fewer than 3 interactions
  std::vector<int64_t> test_item;
  std::vector<std::vector<uint32_t>> train_items;  // per user, sorted, unique
  std::vector<uint32_t> item_train_count;          // per item
  // Per item: 1 for a tail item, one whose training count is below the median over the catalogue. Fixed by
  // the full split, so runs on a fraction of the training data are scored on the same tail.
  std::vector<uint8_t> tail_item;
  // A prepared dataset's per-user training items, read from disk a block of users at a time; when set,
  // train_items is empty and the evaluation reads these instead (its results are the same).
  std::shared_ptr<const TrainItemLists> train_item_lists;
};

// 1 for each item whose training count is below the median count over the catalogue (Split::tail_item).
std::vector<uint8_t> tail_items(const std::vector<uint32_t>& item_train_count);

// Interactions are ordered by (timestamp, item row): the item row breaks ties, so the split does not
// depend on the file's line order. Users with fewer than 3 interactions keep all of them for training.
Split leave_last_out(const Dataset& data);

// The same split with each training interaction kept with probability `fraction` (seeded; at least two
// kept). Validation and test items, tail items and each user's full training list (which evaluation excludes
// from the ranking) stay as they were; the training counts follow the kept interactions.
Split subsample_training(const Split& split, double fraction, uint64_t seed);

}  // namespace funnel::train
