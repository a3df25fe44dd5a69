// In-batch sampled softmax for two-tower retrieval (CBNS eq. 3-4): row r's logits are
// u_r . v_c / tau - log q(item_c) over the batch's items c, with the diagonal as the target, plus
// optional extra negative columns from a memory bank (CBNS eq. 9) that receive no gradient.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace funnel::train {

struct SampledSoftmaxOptions {
  float temperature = 0.05f;
  // logQ correction: subtract log q(item) from every column, correcting the popularity bias of
  // in-batch negatives.
  bool logq_correction = true;
  // A column holding row r's own positive item (other than the diagonal) is an accidental hit: excluded.
  bool mask_accidental_hits = true;
};

// Extra negative columns: detached item embeddings with their log q and item ids.
struct NegativeBank {
  const float* embeddings = nullptr;  // [count, dim]
  const float* log_q = nullptr;       // [count]
  const uint32_t* items = nullptr;    // [count]
  size_t count = 0;
  // Eq. 9 subtracts each bank entry's log q as in-batch columns do; false drops it on bank columns only.
  bool apply_logq = true;
  // The item tower's gradient. false (eq. 9 as written): the full softmax's, restricted to the in-batch
  // columns; the bank's share of the softmax then pushes no item away, while every positive still pulls
  // its item towards its user, and the items drift together. true: the in-batch softmax's (the batch
  // columns renormalised), so pull and push on items balance as without a bank; the user tower still
  // learns from every column. See docs/studies/retrieval.md.
  bool balanced_item_gradient = false;
};

// The rows one rank scores when the columns are the global batch of a distributed run (global negatives,
// train/retrieval/global_negatives.hpp): `count` rows of u whose positives are columns first .. first+count-1,
// the loss and gradients normalised by `total`, the global batch. The default: one row per column.
struct SoftmaxRows {
  size_t first = 0;
  size_t count = SIZE_MAX;  // SIZE_MAX: as many rows as columns
  size_t total = 0;         // 0: the number of rows
};

// Mean cross-entropy over the batch. u: [rows, dim], v: [batch, dim] (row-major); items: the batch's item
// ids (for hit masking); log_q: log q of each column's item. Writes du ([rows, dim]) and dv ([batch, dim]) when
// not null. Rows are spread over the OpenMP threads; the result does not depend on their number. With
// `rows`, returns the rows' summed loss over rows.total (the sum over the ranks is the global mean) and dv
// holds their share of the columns' gradient.
double sampled_softmax(const float* u, const float* v, std::span<const uint32_t> items, std::span<const float> log_q,
                       size_t dim, const SampledSoftmaxOptions& options, float* du, float* dv, const NegativeBank& bank = {},
                       const SoftmaxRows& rows = {});

}  // namespace funnel::train
