// The k best (row, score) pairs of a stream: a min-heap whose front is the weakest kept hit, behind a
// vectorised threshold test, so a long scan costs about one comparison per score.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "funnel/kernels.hpp"

namespace funnel {

class TopK {
 public:
  explicit TopK(size_t k) : k_(k) {}

  // Better = higher score, then lower row: a strict total order, so ties never depend on scan order.
  // NaN scores are offered as -infinity, which keeps the order strict; search() refuses any hit that is not
  // finite rather than answering with it.
  static bool better(const Hit& a, const Hit& b) { return a.score > b.score || (a.score == b.score && a.index < b.index); }

  // Offers scores[i] as row first + i for i in [0, n), leaving out rows with skip[row] != 0 (skip may be
  // empty). Successive offers must come in increasing row order: then a score equal to the weakest kept
  // one never displaces it, and the fast path below may test with a strict `>`.
  void offer(const float* scores, size_t n, size_t first, std::span<const uint8_t> skip) {
    if (k_ == 0) return;
    size_t i = 0;
    for (; i < n && heap_.size() < k_; ++i)
      if (skip.empty() || !skip[first + i]) push({static_cast<uint32_t>(first + i), clean(scores[i])});
    if (i == n) return;
    typedef float Float4 __attribute__((vector_size(16)));
    float threshold = heap_.front().score;
    for (; i + 8 <= n; i += 8) {
      Float4 a, b;
      std::memcpy(&a, scores + i, sizeof a);
      std::memcpy(&b, scores + i + 4, sizeof b);
      const Float4 t = {threshold, threshold, threshold, threshold};
      const auto above = (a > t) | (b > t);
      if (!(above[0] | above[1] | above[2] | above[3])) continue;
      for (size_t j = i; j < i + 8; ++j) consider(scores[j], first + j, skip, &threshold);
    }
    for (; i < n; ++i) consider(scores[i], first + i, skip, &threshold);
  }

  // Adds one hit in any order (merging the shares of several threads, re-scored hits).
  void add(Hit hit) {
    if (k_ == 0) return;
    hit.score = clean(hit.score);
    if (heap_.size() < k_) return push(hit);
    if (better(hit, heap_.front())) replace_front(hit);
  }

  const std::vector<Hit>& hits() const { return heap_; }

  // The kept hits, best first; leaves this empty.
  void take_sorted(std::vector<Hit>* out) {
    std::sort_heap(heap_.begin(), heap_.end(), better);
    out->swap(heap_);
    heap_.clear();
  }

 private:
  static float clean(float score) { return std::isnan(score) ? -std::numeric_limits<float>::infinity() : score; }
  void push(const Hit& hit) {
    heap_.push_back(hit);
    std::push_heap(heap_.begin(), heap_.end(), better);
  }
  void replace_front(const Hit& hit) {
    std::pop_heap(heap_.begin(), heap_.end(), better);
    heap_.back() = hit;
    std::push_heap(heap_.begin(), heap_.end(), better);
  }
  void consider(float score, size_t row, std::span<const uint8_t> skip, float* threshold) {
    if (!(score > *threshold) || (!skip.empty() && skip[row])) return;
    replace_front({static_cast<uint32_t>(row), score});
    *threshold = heap_.front().score;
  }

  size_t k_;
  std::vector<Hit> heap_;
};

}  // namespace funnel
