// The ranking stage's forward pass for one user against a batch of candidates.
#include <algorithm>

#include "funnel/kernels.hpp"
#include "funnel/ranker.hpp"

namespace funnel {

uint32_t RankerView::input_dim() const {
  uint32_t dim = 0;
  for (const auto* inputs : {&user_inputs, &item_inputs, &behaviour_inputs})
    for (const auto& input : *inputs) dim += input.table ? input.dim : 1;
  for (const auto& unit : coactions) dim += unit.output_dim();
  return dim;
}

namespace {

// Sum (or mean) of the table rows ids[k * stride + column], k < count. `ids` may be null when count is 0.
void pool(const TowerInputView& input, const uint32_t* ids, size_t count, size_t stride, size_t column, float* out) {
  std::fill(out, out + input.dim, 0.0f);
  for (size_t k = 0; k < count; ++k) {
    const float* row = input.table + static_cast<size_t>(ids[k * stride + column]) * input.dim;
    for (uint32_t d = 0; d < input.dim; ++d) out[d] += row[d];
  }
  if (input.pooling == Pooling::kMean && count > 1) {
    const float inv = 1.0f / static_cast<float>(count);
    for (uint32_t d = 0; d < input.dim; ++d) out[d] *= inv;
  }
}

}  // namespace

void rank_logits(const RankerView& ranker, const RankInput& input, RankScratch* scratch, float* logits) {
  const size_t n = input.candidate_count;
  if (n == 0) return;
  const size_t width = ranker.input_dim();
  const size_t columns = ranker.item_columns;
  const size_t behaviours = std::min<size_t>(input.behaviour_count, ranker.max_behaviours);
  // The most recent `behaviours` rows; null when there are none (no arithmetic on a null pointer).
  const uint32_t* recent = behaviours ? input.behaviours + (input.behaviour_count - behaviours) * columns : nullptr;

  // The candidate-independent part of the input row, written once into row 0 and copied to the others.
  scratch->inputs.resize(n * width);
  float* row0 = scratch->inputs.data();
  size_t offset = 0;
  for (const auto& in : ranker.user_inputs) {
    if (!in.table) {
      row0[offset++] = input.user->dense[in.feature];
      continue;
    }
    const auto ids = input.user->ids_of(in.feature);
    pool(in, ids.data(), ids.size(), 1, 0, row0 + offset);
    offset += in.dim;
  }
  const size_t item_offset = offset;
  for (const auto& in : ranker.item_inputs) offset += in.dim;
  for (const auto& in : ranker.behaviour_inputs) {
    pool(in, recent, behaviours, columns, in.feature, row0 + offset);
    offset += in.dim;
  }
  const size_t coaction_offset = offset;
  for (size_t c = 1; c < n; ++c) std::copy(row0, row0 + coaction_offset, row0 + c * width);

  // Candidate embeddings.
  for (size_t c = 0; c < n; ++c) {
    float* cursor = row0 + c * width + item_offset;
    for (const auto& in : ranker.item_inputs) {
      const uint32_t id = input.candidates[c * columns + in.feature];
      const float* row = in.table + static_cast<size_t>(id) * in.dim;
      std::copy(row, row + in.dim, cursor);
      cursor += in.dim;
    }
  }

  // Co-action: the feed (and its powers) is shared by every candidate; the induction row is each
  // candidate's own.
  offset = coaction_offset;
  for (const auto& unit : ranker.coactions) {
    const size_t feed_rows = unit.feed_sequence ? behaviours : 1;
    scratch->feed.resize(feed_rows * unit.feed_dim);
    for (size_t r = 0; r < feed_rows; ++r) {
      const uint32_t id = unit.feed_sequence ? recent[r * columns + unit.feed] : input.user->ids_of(unit.feed)[0];
      const float* row = unit.feed_table + static_cast<size_t>(id) * unit.feed_dim;
      std::copy(row, row + unit.feed_dim, scratch->feed.data() + r * unit.feed_dim);
    }
    scratch->cache.resize(unit.cache_size(feed_rows));
    coaction_feed_powers(unit, scratch->feed.data(), feed_rows, scratch->cache.data());
    const size_t induction_width = unit.induction_width();
    for (size_t c = 0; c < n; ++c) {
      const uint32_t id = input.candidates[c * columns + unit.induction_column];
      coaction_forward(unit, unit.induction_table + static_cast<size_t>(id) * induction_width, feed_rows, scratch->cache.data(),
                       row0 + c * width + offset);
    }
    offset += unit.output_dim();
  }

  // Dense layers across all candidates.
  const float* x = scratch->inputs.data();
  for (size_t l = 0; l < ranker.layers.size(); ++l) {
    const DenseLayerView& layer = ranker.layers[l];
    std::vector<float>& y = l % 2 == 0 ? scratch->hidden_a : scratch->hidden_b;
    y.resize(n * layer.out);
    ranker_dense_layer(layer, x, n, y.data());
    x = y.data();
  }
  std::copy(x, x + n, logits);
}

void ranker_dense_layer(const DenseLayerView& layer, const float* x, size_t rows, float* y) {
  kernels::dense_forward_batch(layer.weight, layer.bias, layer.out, layer.in, x, rows, y);
  for (size_t r = 0; r < rows; ++r) activate(layer, y + r * layer.out);
}

}  // namespace funnel
