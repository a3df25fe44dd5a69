#include "train/retrieval/logq.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace funnel::train {

std::vector<float> log_q_from_counts(const std::vector<uint32_t>& counts, size_t total) {
  std::vector<float> log_q(counts.size());
  const double denominator = static_cast<double>(std::max<size_t>(total, 1));
  for (size_t i = 0; i < counts.size(); ++i)
    log_q[i] = static_cast<float>(std::log((counts[i] > 0 ? static_cast<double>(counts[i]) : 0.5) / denominator));
  return log_q;
}

StreamingFrequency::StreamingFrequency(size_t buckets, float alpha)
    : alpha_(alpha), last_step_(std::max<size_t>(buckets, 1), -1.0f), gap_(std::max<size_t>(buckets, 1), 0.0f) {}

size_t StreamingFrequency::bucket(uint32_t item) const {
  // A multiplicative hash spreads consecutive ids; with buckets >= items, collisions are rare.
  return static_cast<size_t>((static_cast<uint64_t>(item) * 0x9E3779B97F4A7C15ull) >> 17) % last_step_.size();
}

void StreamingFrequency::update(long step, const std::vector<uint32_t>& items, std::vector<float>* log_q) {
  std::unordered_map<size_t, uint32_t> arrivals;
  for (uint32_t item : items) ++arrivals[bucket(item)];
  for (const auto& [b, count] : arrivals) {
    const float now = static_cast<float>(step);
    // The first sighting has no previous one: its gap is the time since the start of training.
    const float since = last_step_[b] < 0.0f ? now + 1.0f : now - last_step_[b];
    // Per arrival, as the algorithm defines it: the first of the step's `count` arrivals came after
    // `since` steps, the others after none. Averaging over arrivals keeps the mean gap unbiased.
    const float decay = std::pow(1.0f - alpha_, static_cast<float>(count - 1));
    gap_[b] = gap_[b] == 0.0f ? since / static_cast<float>(count) : decay * ((1.0f - alpha_) * gap_[b] + alpha_ * since);
    last_step_[b] = now;
  }
  log_q->resize(items.size());
  const double batch = static_cast<double>(items.size());
  for (size_t i = 0; i < items.size(); ++i)
    (*log_q)[i] = static_cast<float>(-std::log(std::max(static_cast<double>(gap_[bucket(items[i])]) * batch, 1.0)));
}

void StreamingFrequency::register_state(TrainingState& training) {
  training.array("streaming/last_step", last_step_);
  training.array("streaming/gap", gap_);
}

}  // namespace funnel::train
