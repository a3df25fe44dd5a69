#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace funnel::train {

// The value lists of a batch for one feature: list b is ids[offsets[rows[b]] .. offsets[rows[b] + 1]). A
// table's column with its batch rows (FeatureColumn::lists), or an augmented batch's own lists with rows 0..n-1.
struct IdLists {
  const uint32_t* offsets;
  const uint32_t* ids;
  std::span<const uint32_t> rows;

  IdLists(const uint32_t* offsets_, const uint32_t* ids_, std::span<const uint32_t> rows_)
      : offsets(offsets_), ids(ids_), rows(rows_) {}
  size_t size() const { return rows.size(); }
  std::span<const uint32_t> operator[](size_t b) const { return {ids + offsets[rows[b]], ids + offsets[rows[b] + 1]}; }
};

}  // namespace funnel::train
