#include "funnel/search.hpp"

#include <pthread.h>

#include <algorithm>
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

// Merges the threads' shortlists, re-scores them against the exact rows when there are any, keeps k.
void finish(const EmbeddingRows& rows, const float* query, const SearchOptions& options, std::vector<TopK>& parts,
            std::vector<Hit>* out) {
  TopK merged(shortlist_size(rows, options));
  for (const TopK& part : parts)
    for (const Hit& hit : part.hits()) merged.add(hit);
  if (options.exact && rows.precision != Precision::kF32) {
    TopK rescored(options.k);
    for (const Hit& hit : merged.hits())
      rescored.add({hit.index, kernels::dot(options.exact + size_t{hit.index} * rows.dim, query, rows.dim)});
    rescored.take_sorted(out);
    return;
  }
  merged.take_sorted(out);
}

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
  finish(rows, query, options, best, out);
}

void search_batch(const EmbeddingRows& rows, const float* queries, size_t count, const SearchOptions& options,
                  std::vector<std::vector<Hit>>* out) {
  out->assign(count, {});
  if (options.k == 0 || rows.rows == 0 || count == 0) return;
  const size_t parts = thread_count(options.threads, rows.rows);
  const size_t keep = shortlist_size(rows, options);
  // best[part * count + q]: query q's shortlist over that part's rows.
  std::vector<TopK> best(parts * count, TopK(keep));
  run_parts(parts, [&](size_t part) {
    const size_t begin = rows.rows * part / parts, end = rows.rows * (part + 1) / parts;
    std::vector<float> scores(std::min(count, kBatchQueries) * kBatchRows);
    for (size_t b = begin; b < end; b += kBatchRows) {
      const size_t e = std::min(end, b + kBatchRows), width = e - b;
      for (size_t q0 = 0; q0 < count; q0 += kBatchQueries) {
        const size_t n = std::min(count - q0, kBatchQueries);
        kernels::scan_batch(rows, b, e, queries + q0 * rows.dim, n, scores.data());
        for (size_t q = 0; q < n; ++q) best[part * count + q0 + q].offer(scores.data() + q * width, width, b, options.skip);
      }
    }
  });
  std::vector<TopK> shares;
  for (size_t q = 0; q < count; ++q) {
    shares.clear();
    for (size_t part = 0; part < parts; ++part) shares.push_back(std::move(best[part * count + q]));
    finish(rows, queries + q * rows.dim, options, shares, &(*out)[q]);
  }
}

}  // namespace funnel
