// A StringTable of the model file (vocabularies, catalogue and item-table keys) read in place.
//
// Loading checks only that a table's three vectors agree in length, so load time does not grow with the
// number of items. Every read is bounds-checked instead: a damaged table can make a lookup miss or return
// the wrong key, but never read outside the file. verify() makes the full check (ends within the bytes
// and non-decreasing, order a permutation with strictly increasing keys): Model::verify_keys, `funnel
// inspect`, the fuzzer and the tests run it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "funnel/status.hpp"
#include "funnel_generated.h"

namespace funnel {

class StringTableView {
 public:
  explicit StringTableView(const fb::StringTable* table) : table_(table) {}

  size_t size() const { return table_ ? table_->ends()->size() : 0; }

  // String i (i < size()); empty where the table's ends are out of range.
  std::string_view at(size_t i) const {
    const auto* ends = table_->ends();
    const uint32_t begin = i == 0 ? 0 : ends->Get(static_cast<flatbuffers::uoffset_t>(i - 1));
    const uint32_t end = ends->Get(static_cast<flatbuffers::uoffset_t>(i));
    if (begin > end || end > table_->bytes()->size()) return {};
    return {reinterpret_cast<const char*>(table_->bytes()->data()) + begin, end - begin};
  }

  // The position of `key`, or -1.
  int64_t find(std::string_view key) const {
    if (!table_) return -1;
    const auto* order = table_->order();
    const size_t n = size();
    size_t lo = 0, hi = order->size();
    while (lo < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      const uint32_t position = order->Get(static_cast<flatbuffers::uoffset_t>(mid));
      if (position >= n) return -1;
      const std::string_view probe = at(position);
      if (probe < key) {
        lo = mid + 1;
      } else if (key < probe) {
        hi = mid;
      } else {
        return position;
      }
    }
    return -1;
  }

  std::vector<std::string> strings() const {
    std::vector<std::string> out;
    out.reserve(size());
    for (size_t i = 0; i < size(); ++i) out.emplace_back(at(i));
    return out;
  }

  // The load-time check: the vectors agree in length.
  static Status check_shape(const fb::StringTable* table, const std::string& what) {
    if (!table) return Status::ok();
    if (table->order()->size() != table->ends()->size())
      return {StatusCode::kCorruptModel, what + ": sorted order has " + std::to_string(table->order()->size()) + " entries for " +
                                        std::to_string(table->ends()->size()) + " strings"};
    return Status::ok();
  }

  // The full check, O(strings): the ends stay within the bytes and never decrease, and `order` lists
  // positions in range whose strings strictly increase (so they are distinct, and in-range positions that
  // pass are a permutation).
  Status verify(const std::string& what) const {
    if (!table_) return Status::ok();
    if (Status s = check_shape(table_, what); !s) return s;
    const auto* ends = table_->ends();
    uint32_t previous_end = 0;
    for (size_t i = 0; i < ends->size(); ++i) {
      const uint32_t end = ends->Get(static_cast<flatbuffers::uoffset_t>(i));
      if (end < previous_end || end > table_->bytes()->size())
        return {StatusCode::kCorruptModel, what + ": string " + std::to_string(i) + " ends outside its bytes"};
      previous_end = end;
    }
    const auto* order = table_->order();
    std::string_view previous;
    for (size_t i = 0; i < order->size(); ++i) {
      const uint32_t position = order->Get(static_cast<flatbuffers::uoffset_t>(i));
      if (position >= size()) return {StatusCode::kCorruptModel, what + ": sorted order entry " + std::to_string(i) + " is out of range"};
      const std::string_view key = at(position);
      if (i > 0 && !(previous < key))
        return {StatusCode::kCorruptModel, what + ": keys are duplicated or out of order at sorted entry " + std::to_string(i)};
      previous = key;
    }
    return Status::ok();
  }

 private:
  const fb::StringTable* table_;
};

}  // namespace funnel
