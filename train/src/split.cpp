#include "split.hpp"

#include <algorithm>

namespace funnel::train {

Split leave_last_out(const Dataset& data) {
  std::vector<std::vector<Interaction>> by_user(data.users.size());
  for (const Interaction& x : data.interactions) by_user[x.user].push_back(x);

  Split split;
  split.validation_item.assign(data.users.size(), -1);
  split.test_item.assign(data.users.size(), -1);
  split.train_items.resize(data.users.size());
  split.item_train_count.assign(data.items.size(), 0);
  for (size_t u = 0; u < by_user.size(); ++u) {
    auto& history = by_user[u];
    std::stable_sort(history.begin(), history.end(), [](const Interaction& a, const Interaction& b) {
      return a.timestamp < b.timestamp || (a.timestamp == b.timestamp && a.item < b.item);
    });
    size_t train_end = history.size();
    if (history.size() >= 3) {
      split.test_item[u] = history[history.size() - 1].item;
      split.validation_item[u] = history[history.size() - 2].item;
      train_end -= 2;
    }
    for (size_t i = 0; i < train_end; ++i) {
      split.train.push_back(history[i]);
      split.train_items[u].push_back(history[i].item);
      ++split.item_train_count[history[i].item];
    }
    auto& items = split.train_items[u];
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
  }
  return split;
}

}  // namespace funnel::train
