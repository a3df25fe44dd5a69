// In-batch sampled softmax for two-tower retrieval (CBNS eq. 3-4): row r's logits are
// u_r . v_c / tau - log q(item_c) over the batch's items c, with the diagonal as the target.
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
  // An off-diagonal column holding row r's own positive item is an accidental hit: excluded.
  bool mask_accidental_hits = true;
};

// Mean cross-entropy over the batch. u, v: [batch, dim] (row-major); items: the batch's item ids (for
// hit masking); log_q: log q of each row's item. Writes du, dv ([batch, dim]) when not null.
double sampled_softmax(const float* u, const float* v, std::span<const uint32_t> items, std::span<const float> log_q,
                       size_t dim, const SampledSoftmaxOptions& options, float* du, float* dv);

}  // namespace funnel::train
