// Per-user, time-ordered leave-last-out: each user's last interaction is the test item, the one before
// it validation, the rest training.
#pragma once

#include <cstdint>
#include <vector>

#include "dataset.hpp"

namespace funnel::train {

struct Split {
  std::vector<Interaction> train;
  std::vector<int64_t> validation_item;  // per user; -1 when the user has fewer than 3 interactions
  std::vector<int64_t> test_item;
  std::vector<std::vector<uint32_t>> train_items;  // per user, sorted, unique
  std::vector<uint32_t> item_train_count;          // per item
};

// Interactions are ordered by (timestamp, item row): the item row breaks ties, so the split does not
// depend on the file's line order. Users with fewer than 3 interactions keep all of them for training.
Split leave_last_out(const Dataset& data);

}  // namespace funnel::train
