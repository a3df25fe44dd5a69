// The built-in dataset: synthetic users, items and interactions with the structure real data has
// (power-law item popularity, latent tastes that user and item features partly reveal), so the demo and
// the tests run on any machine.
#pragma once

#include <cstdint>
#include <string>

namespace funnel::train {

struct SyntheticOptions {
  uint32_t users = 3000;
  uint32_t items = 1000;
  uint32_t categories = 20;
  uint32_t mean_interactions = 30;  // per user; at least 5 each
  double popularity_exponent = 0.8;  // Zipf exponent of item popularity
  uint64_t seed = 42;
  // The share of interactions (after each user's first) that follow a hidden pairing of categories: the
  // next item is drawn uniformly from the items of category pair(c), c the category of the user's previous
  // item, pair a random permutation. Neither the candidate nor the history tells alone whether an item
  // follows; only the two together do (behaviour x candidate co-action). 0, the default, draws nothing for
  // it: the output is byte for byte what it was before the option existed.
  double pairing = 0.0;
};

// Writes users.csv, items.csv, interactions.csv and dataset.json (the description to train from)
// into `directory`, which is created if needed. Returns the path of dataset.json.
// Throws ConfigError for options out of range.
std::string write_synthetic_dataset(const std::string& directory, const SyntheticOptions& options);

}  // namespace funnel::train
