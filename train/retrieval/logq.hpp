// Sampling probabilities q(item) for the logQ correction (CBNS eq. 4): either exact training
// frequencies, or a streaming estimate for data read once (Yi et al., RecSys 2019, "Sampling-bias-
// corrected neural modeling", Algorithm 2: the average number of steps between two occurrences).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "train/core/training_state.hpp"

namespace funnel::train {

// log(count / total) per item; items never seen get log(0.5 / total), half a sighting, so that they stay
// finite (they never appear as in-batch columns, only as candidates).
std::vector<float> log_q_from_counts(const std::vector<uint32_t>& counts, size_t total);

class StreamingFrequency {
 public:
  // `buckets`: the size of the hashed arrays A and B; `alpha`: the learning rate of the gap average.
  StreamingFrequency(size_t buckets, float alpha);

  // Updates the estimates with one training step's items and writes each row's log q. An item seen c
  // times in the step counts as c arrivals: one after the gap since its last step, c - 1 after none.
  // q is per sample: 1 / (mean gap x batch size), comparable with the count-based q.
  void update(long step, const std::vector<uint32_t>& items, std::vector<float>* log_q);

  // Registers A and B ("streaming/...") with a run's state, for checkpoints.
  void register_state(TrainingState& training);

 private:
  size_t bucket(uint32_t item) const;
  float alpha_;
  std::vector<float> last_step_;  // A: the step an item of the bucket was last seen
  std::vector<float> gap_;        // B: the running average of steps between sightings
};

}  // namespace funnel::train
