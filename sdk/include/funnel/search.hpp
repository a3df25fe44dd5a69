// Exact maximum-inner-product search over a catalogue of embeddings in any precision: one query or a
// batch, on one thread or several, with an exact re-score of a quantised scan's shortlist.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "funnel/kernels.hpp"
#include "funnel/status.hpp"

namespace funnel {

struct SearchOptions {
  size_t k = 10;
  // Rows with skip[r] != 0 are never returned (empty: none skipped; else one byte per row).
  std::span<const uint8_t> skip;
  // Threads that scan the catalogue for this call: the caller's plus threads - 1 started for it, each
  // over its own share of the rows (at least 32,768 rows each, so a small catalogue stays on one). 0 means
  // one per hardware thread. The result never depends on it. Single-threaded WASM builds use 1.
  size_t threads = 1;
  // Re-scoring: exact f32 rows [rows, dim], or null. With f16 or int8 rows, the scan keeps
  // max(k * overfetch, k + 64) rows, scores those against `exact`, and returns the best k of them.
  const float* exact = nullptr;
  size_t overfetch = 4;
};

// The k best rows for `query` (rows.dim floats): highest inner product first, ties to the lower row.
// Never a score that is not finite: a query holding NaN or an infinity is InvalidArgument, and a hit whose
// score is not finite (a row, scale or exact row holding one) is CorruptModel naming the row; *out is then
// empty. A row that scores NaN ranks below every finite score, so it can only be a hit when k reaches it.
Status search(const EmbeddingRows& rows, const float* query, const SearchOptions& options, std::vector<Hit>* out);

// search() for `count` queries [count, rows.dim] at once: each block of rows is read once for the whole
// batch (kernels::scan_batch, a register-blocked matrix product), which is much faster per query than
// `count` calls. (*out)[q] holds query q's hits, the same as search() gives: each query's shortlist keeps
// 64 rows more than search()'s and is re-scored with scan(), whose sums the batch kernel's may differ from
// in the last bits. (Only if more than 64 rows scored within rounding of the k-th could a hit differ.)
// Errors as search()'s, naming the query; *out is then empty.
Status search_batch(const EmbeddingRows& rows, const float* queries, size_t count, const SearchOptions& options,
                  std::vector<std::vector<Hit>>* out);

}  // namespace funnel
