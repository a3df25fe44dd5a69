#include "funnel/search.hpp"

#include <pthread.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <limits>
#include <thread>

#include "finite.hpp"
#include "top_k.hpp"

namespace funnel {

namespace {

// A share of the rows smaller than this is not worth a thread (starting one costs tens of microseconds).
[[maybe_unused]] constexpr size_t kMinRowsPerThread = 32768;  // unused where WASM has no threads
// Rows scored per kernel call: the scores stay in L1 while the top-K filter reads them.
constexpr size_t kScanBlock = 1024;
// The batched scan: rows per block and queries per pass (their scores, 128 KB, stay in L2).
constexpr size_t kBatchRows = 512;
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

// Whether any of a[0, 8) is above b[0, 8) (NaN never is): one compare and a movemask on x86, where the
// portable lane-by-lane test cost as much as the batch kernel's arithmetic.
inline bool any_above8(const float* a, const float* b) {
#if defined(__SSE2__)
  const __m128 low = _mm_cmpgt_ps(_mm_loadu_ps(a), _mm_loadu_ps(b)), high = _mm_cmpgt_ps(_mm_loadu_ps(a + 4), _mm_loadu_ps(b + 4));
  return _mm_movemask_ps(_mm_or_ps(low, high)) != 0;
#else
  typedef float Float4 __attribute__((vector_size(16)));
  Float4 x0, x1, y0, y1;
  std::memcpy(&x0, a, sizeof x0);
  std::memcpy(&x1, a + 4, sizeof x1);
  std::memcpy(&y0, b, sizeof y0);
  std::memcpy(&y1, b + 4, sizeof y1);
  const auto above = (x0 > y0) | (x1 > y1);
  return (above[0] | above[1] | above[2] | above[3]) != 0;
#endif
}

// The shortlists of a batch's queries, offered a row of scores (one per query) at a time: each score is
// tested against its query's weakest kept one, eight at a time, so a scan costs about one comparison per
// score. A score that passes is appended to its query's buffer; a buffer of twice the shortlist is cut
// back to the shortlist by a partial sort (nth_element), which raises the bar. A heap (TopK) re-ordered at
// every insertion, as the single search keeps, cost as much as the batch kernel here: a batch's
// shortlists are larger (re-scoring margin, int8 over-fetch) and there are 64 of them. Rows must come in
// increasing order, so that a score equal to the bar never displaces a kept row (see TopK::offer).
class BatchShortlists {
 public:
  BatchShortlists(size_t count, size_t keep) : keep_(keep), buffers_(count), weakest_(count, -std::numeric_limits<float>::infinity()) {}

  void offer_row(const float* scores, size_t q0, size_t n, uint32_t row) {
    if (buffers_[q0].size() < keep_) {  // every buffer fills on the same rows: all of them are kept
      for (size_t q = 0; q < n; ++q) buffers_[q0 + q].push_back({row, std::isnan(scores[q]) ? -std::numeric_limits<float>::infinity() : scores[q]});
      return;
    }
    const float* weakest = weakest_.data() + q0;
    size_t q = 0;
    for (; q + 8 <= n; q += 8) {
      if (!any_above8(scores + q, weakest + q)) continue;
      for (size_t j = q; j < q + 8; ++j) consider(scores[j], q0 + j, row);
    }
    for (; q < n; ++q) consider(scores[q], q0 + q, row);
  }

  // Query q's shortlist (the keep best, in no order); leaves its buffer cut to it.
  const std::vector<Hit>& shortlist(size_t q) {
    cut(q);
    return buffers_[q];
  }

 private:
  void consider(float score, size_t q, uint32_t row) {
    if (!(score > weakest_[q])) return;  // NaN never passes
    buffers_[q].push_back({row, score});
    if (buffers_[q].size() >= 2 * keep_) cut(q);
  }
  void cut(size_t q) {
    std::vector<Hit>& buffer = buffers_[q];
    if (buffer.size() <= keep_) return;
    std::nth_element(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(keep_ - 1), buffer.end(), TopK::better);
    buffer.resize(keep_);
    weakest_[q] = buffer[keep_ - 1].score;
  }

  size_t keep_;
  std::vector<std::vector<Hit>> buffers_;
  std::vector<float> weakest_;
};

// search()'s promise of finite numbers out (the query is checked before the scan): a hit that is not finite
// is an error, and no hit is returned.
Status check_hits(std::vector<Hit>* hits) {
  for (const Hit& hit : *hits)
    if (!std::isfinite(hit.score)) {
      const Status s = not_finite(StatusCode::kCorruptModel, hit.score, "", "the score of row %u", static_cast<unsigned>(hit.index));
      hits->clear();
      return s;
    }
  return Status::ok();
}

}  // namespace

Status search(const EmbeddingRows& rows, const float* query, const SearchOptions& options, std::vector<Hit>* out) {
  out->clear();
  if (const size_t d = first_non_finite(query, rows.dim); d < rows.dim)
    return not_finite(StatusCode::kInvalidArgument, query[d], "", "dimension %zu of the query", d);
  if (options.k == 0 || rows.rows == 0) return Status::ok();
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
  return check_hits(out);
}

Status search_batch(const EmbeddingRows& rows, const float* queries, size_t count, const SearchOptions& options,
                    std::vector<std::vector<Hit>>* out) {
  out->assign(count, {});
  for (size_t q = 0; q < count; ++q)
    if (const size_t d = first_non_finite(queries + q * rows.dim, rows.dim); d < rows.dim)
      return not_finite(StatusCode::kInvalidArgument, queries[q * rows.dim + d], "", "dimension %zu of query %zu", d, q);
  if (options.k == 0 || rows.rows == 0 || count == 0) return Status::ok();
  const size_t parts = thread_count(options.threads, rows.rows);
  const size_t keep = shortlist_size(rows, options);
  std::vector<BatchShortlists> best(parts, BatchShortlists(count, keep + kBatchMargin));
  // Each pass's queries laid out once for the kernel, shared by the threads.
  std::vector<kernels::BatchQueries> passes((count + kBatchQueries - 1) / kBatchQueries);
  for (size_t p = 0; p < passes.size(); ++p)
    kernels::prepare_batch(rows, queries + p * kBatchQueries * rows.dim, std::min(count - p * kBatchQueries, kBatchQueries), &passes[p]);
  run_parts(parts, [&](size_t part) {
    const size_t begin = rows.rows * part / parts, end = rows.rows * (part + 1) / parts;
    std::vector<float> scores(kBatchRows * std::min(count, kBatchQueries));
    for (size_t b = begin; b < end; b += kBatchRows) {
      const size_t e = std::min(end, b + kBatchRows);
      for (size_t q0 = 0; q0 < count; q0 += kBatchQueries) {
        const size_t n = std::min(count - q0, kBatchQueries);
        kernels::scan_batch(rows, b, e, passes[q0 / kBatchQueries], scores.data());
        for (size_t r = b; r < e; ++r)
          if (options.skip.empty() || !options.skip[r]) best[part].offer_row(scores.data() + (r - b) * n, q0, n, static_cast<uint32_t>(r));
      }
    }
  });
  std::vector<uint32_t> indices;
  std::vector<float> rescored;
  for (size_t q = 0; q < count; ++q) {
    const float* query = queries + q * rows.dim;
    // The batch kernel's sums may differ from scan()'s in the last bits: the shortlist is re-scored by
    // scan(), so that a batch returns what one search() per query would.
    TopK batch_shortlist(keep + kBatchMargin);
    for (size_t part = 0; part < parts; ++part)
      for (const Hit& hit : best[part].shortlist(q)) batch_shortlist.add(hit);
    indices.clear();
    for (const Hit& hit : batch_shortlist.hits()) indices.push_back(hit.index);
    rescored.resize(indices.size());
    kernels::scan_rows_at(rows, indices, query, rescored.data());
    TopK shortlist(keep);
    for (size_t i = 0; i < indices.size(); ++i) shortlist.add({indices[i], rescored[i]});
    finish(rows, query, options, shortlist, &(*out)[q]);
    if (Status s = check_hits(&(*out)[q]); !s) {
      out->assign(count, {});
      return {s.code(), "query " + std::to_string(q) + ": " + s.message()};
    }
  }
  return Status::ok();
}

}  // namespace funnel
