#include "funnel/search.hpp"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "top_k.hpp"

namespace funnel {

namespace {

// A share of the rows smaller than this is not worth a thread (starting one costs tens of microseconds).
[[maybe_unused]] constexpr size_t kMinRowsPerThread = 32768;  // unused where WASM has no threads
// Rows scored per kernel call: the scores stay in L1 while the top-K filter reads them.
constexpr size_t kScanBlock = 1024;
// The batched scan: rows per block and queries per pass (their scores, 64 KB, stay in L2).
constexpr size_t kBatchRows = 256;
constexpr size_t kBatchQueries = 64;
// Rows a batch keeps per query beyond the single search's shortlist, before re-scoring with scan(): enough
// that a hit near the k-th cannot be lost to a last-bit difference unless 64 rows score within rounding of it.
constexpr size_t kBatchMargin = 64;

size_t thread_count(size_t requested, size_t rows) {
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
  (void)requested;
  (void)rows;
  return 1;
#else
  size_t threads = requested == 0 ? std::max(1u, std::thread::hardware_concurrency()) : requested;
  return std::max<size_t>(1, std::min(threads, rows / kMinRowsPerThread));
#endif
}

// Runs work(part) for part in [0, parts): parts 1.. on threads of their own, part 0 on the caller's.
// pthreads rather than std::thread, because the SDK is built without exceptions: a thread that cannot
// start is not an abort, its part just runs on the caller's thread afterwards.
template <class Work>
void run_parts(size_t parts, const Work& work) {
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
  for (size_t p = 0; p < parts; ++p) work(p);
#else
  struct Task {
    const Work* work;
    size_t part;
    pthread_t thread;
    bool started;
  };
  std::vector<Task> tasks(parts);
  for (size_t p = 1; p < parts; ++p) {
    tasks[p] = {&work, p, {}, false};
    tasks[p].started = pthread_create(&tasks[p].thread, nullptr, [](void* arg) -> void* {
                         const Task* task = static_cast<const Task*>(arg);
                         (*task->work)(task->part);
                         return nullptr;
                       }, &tasks[p]) == 0;
  }
  work(0);
  for (size_t p = 1; p < parts; ++p) {
    if (tasks[p].started) pthread_join(tasks[p].thread, nullptr);
    else work(p);
  }
#endif
}

// How many rows the scan keeps: more than k when a quantised scan is re-scored exactly.
size_t shortlist_size(const EmbeddingRows& rows, const SearchOptions& options) {
  if (!options.exact || rows.precision == Precision::kF32) return options.k;
  return std::max(options.k * std::max<size_t>(options.overfetch, 1), options.k + 64);
}

// Merges the threads' shortlists into the `keep` best.
TopK merge(std::vector<TopK>& parts, size_t keep) {
  TopK merged(keep);
  for (const TopK& part : parts)
    for (const Hit& hit : part.hits()) merged.add(hit);
  return merged;
}

// Re-scores a quantised scan's shortlist against the exact rows when there are any, and keeps k.
void finish(const EmbeddingRows& rows, const float* query, const SearchOptions& options, TopK& shortlist, std::vector<Hit>* out) {
  if (options.exact && rows.precision != Precision::kF32) {
    TopK rescored(options.k);
    for (const Hit& hit : shortlist.hits())
      rescored.add({hit.index, kernels::dot(options.exact + size_t{hit.index} * rows.dim, query, rows.dim)});
    rescored.take_sorted(out);
    return;
  }
  shortlist.take_sorted(out);
}

// The shortlists of a batch's queries, offered a row of scores (one per query) at a time: each score is
// tested against its query's weakest kept one, eight at a time, so a scan costs about one comparison per
// score. Rows must come in increasing order (see TopK::offer).
class BatchShortlists {
 public:
  BatchShortlists(size_t count, size_t keep) : lists_(count, TopK(keep)), weakest_(count) {}

  void offer_row(const float* scores, size_t q0, size_t n, uint32_t row) {
    if (!lists_[q0].full()) {  // every list fills on the same rows
      for (size_t q = 0; q < n; ++q) {
        lists_[q0 + q].add({row, scores[q]});
        if (lists_[q0 + q].full()) weakest_[q0 + q] = lists_[q0 + q].weakest();
      }
      return;
    }
    typedef float Float4 __attribute__((vector_size(16)));
    const float* weakest = weakest_.data() + q0;
    size_t q = 0;
    for (; q + 8 <= n; q += 8) {
      Float4 a, b, ta, tb;
      std::memcpy(&a, scores + q, sizeof a);
      std::memcpy(&b, scores + q + 4, sizeof b);
      std::memcpy(&ta, weakest + q, sizeof ta);
      std::memcpy(&tb, weakest + q + 4, sizeof tb);
      const auto above = (a > ta) | (b > tb);
      if (!(above[0] | above[1] | above[2] | above[3])) continue;
      for (size_t j = q; j < q + 8; ++j) consider(scores[j], q0 + j, row);
    }
    for (; q < n; ++q) consider(scores[q], q0 + q, row);
  }

  TopK& list(size_t q) { return lists_[q]; }

 private:
  void consider(float score, size_t q, uint32_t row) {
    if (!(score > weakest_[q])) return;
    lists_[q].add({row, score});
    weakest_[q] = lists_[q].weakest();
  }

  std::vector<TopK> lists_;
  std::vector<float> weakest_;
};

}  // namespace

void search(const EmbeddingRows& rows, const float* query, const SearchOptions& options, std::vector<Hit>* out) {
  out->clear();
  if (options.k == 0 || rows.rows == 0) return;
  const size_t parts = thread_count(options.threads, rows.rows);
  const size_t keep = shortlist_size(rows, options);
  std::vector<TopK> best(parts, TopK(keep));
  run_parts(parts, [&](size_t part) {
    const size_t begin = rows.rows * part / parts, end = rows.rows * (part + 1) / parts;
    float scores[kScanBlock];
    for (size_t b = begin; b < end; b += kScanBlock) {
      const size_t e = std::min(end, b + kScanBlock);
      kernels::scan(rows, b, e, query, scores);
      best[part].offer(scores, e - b, b, options.skip);
    }
  });
  TopK shortlist = merge(best, keep);
  finish(rows, query, options, shortlist, out);
}

void search_batch(const EmbeddingRows& rows, const float* queries, size_t count, const SearchOptions& options,
                  std::vector<std::vector<Hit>>* out) {
  out->assign(count, {});
  if (options.k == 0 || rows.rows == 0 || count == 0) return;
  const size_t parts = thread_count(options.threads, rows.rows);
  const size_t keep = shortlist_size(rows, options);
  std::vector<BatchShortlists> best(parts, BatchShortlists(count, keep + kBatchMargin));
  run_parts(parts, [&](size_t part) {
    const size_t begin = rows.rows * part / parts, end = rows.rows * (part + 1) / parts;
    std::vector<float> scores(kBatchRows * std::min(count, kBatchQueries));
    for (size_t b = begin; b < end; b += kBatchRows) {
      const size_t e = std::min(end, b + kBatchRows);
      for (size_t q0 = 0; q0 < count; q0 += kBatchQueries) {
        const size_t n = std::min(count - q0, kBatchQueries);
        kernels::scan_batch(rows, b, e, queries + q0 * rows.dim, n, scores.data());
        for (size_t r = b; r < e; ++r)
          if (options.skip.empty() || !options.skip[r]) best[part].offer_row(scores.data() + (r - b) * n, q0, n, static_cast<uint32_t>(r));
      }
    }
  });
  std::vector<TopK> shares;
  for (size_t q = 0; q < count; ++q) {
    const float* query = queries + q * rows.dim;
    shares.clear();
    for (size_t part = 0; part < parts; ++part) shares.push_back(std::move(best[part].list(q)));
    // The batch kernel's sums may differ from scan()'s in the last bits: the shortlist is re-scored by
    // scan(), so that a batch returns what one search() per query would.
    const TopK batch_shortlist = merge(shares, keep + kBatchMargin);
    TopK shortlist(keep);
    for (const Hit& hit : batch_shortlist.hits()) {
      float score;
      kernels::scan(rows, hit.index, hit.index + 1, query, &score);
      shortlist.add({hit.index, score});
    }
    finish(rows, query, options, shortlist, &(*out)[q]);
  }
}

}  // namespace funnel
