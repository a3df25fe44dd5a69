// The self-supervised task's augmentation (Yao et al., CIKM 2021, section 3.2): feature masking by a
// Random (RFM) or Correlated (CFM) pattern, then per-value dropout of multi-valued features.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "train/data/dataset.hpp"
#include "train/core/rng.hpp"

namespace funnel::train {

// Eq. 4: the mutual information (in nats) between every pair of the table's features, a [k, k] row-major
// matrix, k = table.features.size(). Computed over the table's rows, each row weighted equally (the
// catalogue, the same uniform distribution the self-supervised batches are drawn from).
// Multi-valued features: a row whose features f and g hold value lists A and B contributes 1/(|A| |B|) of
// its weight to every pair (a, b) in A x B (so each row's mass is 1 and the marginals are the values'
// shares); an empty list counts as one value of its own, "no value". Dense features carry no categorical
// values: their rows and columns are 0. The diagonal holds each feature's entropy, MI(f, f) = H(f).
std::vector<double> mutual_information(const EntityTable& table);

// Which features each view masks. Complementary: every feature is masked in exactly one view.
struct FeatureMasks {
  std::vector<uint8_t> first;   // per feature: 1 when the first view masks it
  std::vector<uint8_t> second;  // per feature: 1 when the second view masks it
};

// RFM: a uniformly random subset of floor(k/2) features (at least 1) is masked in the first view, the rest
// in the second. Needs k >= 2.
FeatureMasks random_feature_masks(size_t k, Rng& rng);

// CFM: a seed feature drawn uniformly; the first view masks the floor(k/2) features (at least 1) most
// correlated with it by `mi` ([k, k], from mutual_information). The seed is always among them, as
// MI(seed, seed) = H(seed) is the largest MI the seed has; it is placed first outright, since an exact copy
// of the seed ties with it (or, by rounding, passes it). The others follow by MI(seed, g), descending; ties
// go to the lower feature index. The second view masks the rest. Needs k >= 2 and mi.size() == k * k.
FeatureMasks correlated_feature_masks(std::span<const double> mi, size_t k, Rng& rng);

// The features CFM's first view masks when `seed` is drawn: the seed, then its most correlated features.
std::vector<size_t> correlated_group(std::span<const double> mi, size_t k, size_t seed);

// Per-value dropout: each value of a multi-valued feature's list is dropped with probability p; when every
// value of a non-empty list would be dropped, one value chosen uniformly stays (dropout thins a list, it
// never empties it: emptying is what masking does). Categorical and dense features are unchanged.
// Writes the kept ids of `feature` in `row` into `kept` (cleared first), in their original order.
// p <= 0 keeps every value without drawing from `rng`.
void drop_values(const FeatureColumn& feature, size_t row, double p, Rng& rng, std::vector<uint32_t>* kept);

}  // namespace funnel::train
