#include "train/retrieval/feature_masking.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

namespace funnel::train {

namespace {

// One feature's values per row as dense indices 0 .. count-1 (ids can be sparse, up to a hash bucket count),
// with an empty list replaced by the one-element list {the "no value" index}; `mass` holds each value's
// share of the rows, unnormalised (a row adds 1/|A| to each of its values, so the masses sum to the rows).
struct CompactFeature {
  std::vector<uint32_t> offsets{0};
  std::vector<uint32_t> values;
  std::vector<double> mass;
};

CompactFeature compact(const FeatureColumn& feature, size_t rows) {
  CompactFeature out;
  std::unordered_map<uint32_t, uint32_t> index;
  constexpr uint32_t kUnassigned = UINT32_MAX;
  uint32_t none = kUnassigned;  // the "no value" index, assigned on its first use
  out.offsets.reserve(rows + 1);
  out.values.reserve(feature.ids.size() + rows);
  for (size_t r = 0; r < rows; ++r) {
    const auto ids = feature.ids_of(r);
    if (ids.empty()) {
      if (none == kUnassigned) {
        none = static_cast<uint32_t>(out.mass.size());
        out.mass.push_back(0.0);
      }
      out.values.push_back(none);
      out.mass[none] += 1.0;
    } else {
      const double share = 1.0 / static_cast<double>(ids.size());
      for (uint32_t id : ids) {
        const auto [it, added] = index.try_emplace(id, static_cast<uint32_t>(out.mass.size()));
        if (added) out.mass.push_back(0.0);
        out.values.push_back(it->second);
        out.mass[it->second] += share;
      }
    }
    out.offsets.push_back(static_cast<uint32_t>(out.values.size()));
  }
  return out;
}

// Sums in the order of the values' indices (first appearance in the table), so that the result does not
// depend on a hash map's iteration order.
double entropy(const CompactFeature& f, double rows) {
  double h = 0.0;
  for (double m : f.mass)
    if (m > 0.0) h += m / rows * std::log(rows / m);
  return h;
}

double mutual_information(const CompactFeature& f, const CompactFeature& g, size_t rows) {
  // Joint mass per (value of f, value of g), in first-appearance order for a deterministic sum.
  std::unordered_map<uint64_t, uint32_t> slot;
  std::vector<std::pair<uint64_t, double>> joint;
  slot.reserve(rows);
  joint.reserve(rows);
  for (size_t r = 0; r < rows; ++r) {
    const uint32_t a0 = f.offsets[r], a1 = f.offsets[r + 1], b0 = g.offsets[r], b1 = g.offsets[r + 1];
    const double share = 1.0 / (static_cast<double>(a1 - a0) * static_cast<double>(b1 - b0));
    for (uint32_t a = a0; a < a1; ++a)
      for (uint32_t b = b0; b < b1; ++b) {
        const uint64_t key = static_cast<uint64_t>(f.values[a]) << 32 | g.values[b];
        const auto [it, added] = slot.try_emplace(key, static_cast<uint32_t>(joint.size()));
        if (added) joint.emplace_back(key, 0.0);
        joint[it->second].second += share;
      }
  }
  // MI = sum P(a,b) log(P(a,b) / (P(a) P(b))) with P = mass / rows, written on the masses so that an exactly
  // independent pair gives log(1) = 0 exactly.
  const double n = static_cast<double>(rows);
  double mi = 0.0;
  for (const auto& [key, m] : joint) {
    const double ma = f.mass[key >> 32], mb = g.mass[key & 0xFFFFFFFFu];
    mi += m / n * std::log(m * n / (ma * mb));
  }
  return mi;
}

size_t first_view_size(size_t k) { return std::max<size_t>(1, k / 2); }

}  // namespace

std::vector<double> mutual_information(const EntityTable& table) {
  const size_t k = table.features.size(), rows = table.size();
  std::vector<double> mi(k * k, 0.0);
  if (rows == 0) return mi;
  std::vector<CompactFeature> features(k);
  for (size_t f = 0; f < k; ++f)
    if (table.features[f].def.kind != FeatureKind::kDense) features[f] = compact(table.features[f], rows);
  const double n = static_cast<double>(rows);
  for (size_t f = 0; f < k; ++f) {
    if (table.features[f].def.kind == FeatureKind::kDense) continue;
    // The diagonal is the entropy of f's marginal. For a multi-valued f that is not what pairing f's list
    // with itself gives (a row {1, 2} would spread over (1, 2) and (2, 1) too), but it is the bound every
    // MI(f, g) stays under, which is what CFM's ranking relies on.
    mi[f * k + f] = entropy(features[f], n);
    for (size_t g = f + 1; g < k; ++g) {
      if (table.features[g].def.kind == FeatureKind::kDense) continue;
      mi[f * k + g] = mi[g * k + f] = mutual_information(features[f], features[g], rows);
    }
  }
  return mi;
}

FeatureMasks random_feature_masks(size_t k, Rng& rng) {
  std::vector<size_t> order(k);
  std::iota(order.begin(), order.end(), size_t{0});
  rng.shuffle(order);
  FeatureMasks masks{std::vector<uint8_t>(k, 0), std::vector<uint8_t>(k, 1)};
  for (size_t i = 0; i < first_view_size(k); ++i) {
    masks.first[order[i]] = 1;
    masks.second[order[i]] = 0;
  }
  return masks;
}

std::vector<size_t> correlated_group(std::span<const double> mi, size_t k, size_t seed) {
  // The seed goes first explicitly rather than by its diagonal: a copy of the seed (MI(seed, copy) =
  // H(seed)) ties with the diagonal, and rounding can even put it a hair above.
  std::vector<size_t> others;
  others.reserve(k - 1);
  for (size_t g = 0; g < k; ++g)
    if (g != seed) others.push_back(g);
  const double* row = mi.data() + seed * k;
  // Stable: features listed by index, so equal MI keeps the lower index first.
  std::stable_sort(others.begin(), others.end(), [row](size_t a, size_t b) { return row[a] > row[b]; });
  std::vector<size_t> group = {seed};
  group.insert(group.end(), others.begin(), others.begin() + static_cast<long>(first_view_size(k) - 1));
  return group;
}

FeatureMasks correlated_feature_masks(std::span<const double> mi, size_t k, Rng& rng) {
  FeatureMasks masks{std::vector<uint8_t>(k, 0), std::vector<uint8_t>(k, 1)};
  for (size_t f : correlated_group(mi, k, rng.below(k))) {
    masks.first[f] = 1;
    masks.second[f] = 0;
  }
  return masks;
}

void drop_values(const FeatureColumn& feature, size_t row, double p, Rng& rng, std::vector<uint32_t>* kept) {
  const auto ids = feature.ids_of(row);
  kept->assign(ids.begin(), ids.end());
  // p <= 0 draws nothing, so that turning dropout off leaves the random stream as if it were absent.
  if (feature.def.kind != FeatureKind::kMultiCategorical || ids.empty() || p <= 0.0) return;
  kept->clear();
  for (uint32_t id : ids)
    if (rng.uniform() >= p) kept->push_back(id);
  if (kept->empty()) kept->push_back(ids[rng.below(ids.size())]);
}

}  // namespace funnel::train
