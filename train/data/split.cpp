#include "train/data/split.hpp"

#include <algorithm>

#include "train/core/rng.hpp"

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
  split.tail_item = tail_items(split.item_train_count);
  return split;
}

std::vector<uint8_t> tail_items(const std::vector<uint32_t>& item_train_count) {
  std::vector<uint32_t> counts = item_train_count;
  std::nth_element(counts.begin(), counts.begin() + static_cast<long>(counts.size() / 2), counts.end());
  const uint32_t median = counts.empty() ? 0 : counts[counts.size() / 2];
  std::vector<uint8_t> tail(item_train_count.size());
  for (size_t i = 0; i < tail.size(); ++i) tail[i] = item_train_count[i] < median;
  return tail;
}

Split subsample_training(const Split& split, double fraction, uint64_t seed) {
  Split out = split;
  if (fraction >= 1.0) return out;
  Rng rng(Rng(seed ^ 0xF4AC7104ull).next());
  out.train.clear();
  for (const Interaction& x : split.train)
    if (rng.uniform() < fraction) out.train.push_back(x);
  if (out.train.size() < 2) out.train.assign(split.train.begin(), split.train.begin() + std::min<long>(2, static_cast<long>(split.train.size())));
  std::fill(out.item_train_count.begin(), out.item_train_count.end(), 0u);
  for (const Interaction& x : out.train) ++out.item_train_count[x.item];
  return out;
}

}  // namespace funnel::train
