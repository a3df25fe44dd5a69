// The ranking stage (CTR) as plain views over float arrays, like the towers: the loader points them into
// the model file, the trainer into its own parameters, so evaluation during training and the SDK run
// the same code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "funnel/features.hpp"
#include "funnel/tower.hpp"

namespace funnel {

// One co-action pair of CAN (see CoAction in sdk/schema/funnel.fbs for the maths and the row layout).
struct CoActionView {
  uint32_t induction_column = 0;  // column of the item ids of the candidate
  uint32_t feed = 0;              // a model feature index (user feed) or an item column (sequence feed)
  bool feed_sequence = false;
  const float* induction_table = nullptr;  // [rows, induction_width()]
  const float* feed_table = nullptr;       // [rows, feed_dim]
  uint32_t feed_dim = 0;
  std::vector<uint32_t> layer_sizes;
  bool bias = false;
  uint32_t orders = 1;
  bool order_independent = false;

  // Floats of one order's micro-MLP: every W_l and, with bias, every b_l.
  uint32_t block_size() const;
  uint32_t induction_width() const { return block_size() * (order_independent ? orders : 1); }
  // orders x (sum of the layer sizes): every layer's output for every order.
  uint32_t output_dim() const;
  // Floats of the cache of coaction_forward over `rows` feed vectors.
  size_t cache_size(size_t rows) const;
};

// Encoded item features are rows of `item_columns` ids; the item and behaviour inputs' `feature` is a
// column of such a row, the user inputs' `feature` a model feature index.
struct RankerView {
  std::vector<TowerInputView> user_inputs;
  std::vector<TowerInputView> item_inputs;
  std::vector<TowerInputView> behaviour_inputs;
  std::vector<CoActionView> coactions;
  std::vector<DenseLayerView> layers;  // the last one has a single output: the logit
  uint32_t item_columns = 0;
  uint32_t max_behaviours = 0;

  uint32_t input_dim() const;
};

// One user against a batch of candidates. Behaviours are oldest first; the ranker reads the last
// max_behaviours of them.
struct RankInput {
  const EncodedFeatures* user = nullptr;
  const uint32_t* behaviours = nullptr;  // [behaviour_count, item_columns]
  size_t behaviour_count = 0;
  const uint32_t* candidates = nullptr;  // [candidate_count, item_columns]
  size_t candidate_count = 0;
};

// Per-call buffers, reused across calls by one thread.
struct RankScratch {
  std::vector<float> inputs, hidden_a, hidden_b, feed, cache;
};

// logits[c] for every candidate: the part shared by all candidates (user, pooled behaviours, feed
// powers) is computed once, then the co-action unit and the dense layers run across the candidates.
void rank_logits(const RankerView& ranker, const RankInput& input, RankScratch* scratch, float* logits);

// One dense layer of the ranker's MLP over a batch: y [rows, out] = x [rows, in] W^T + bias, then the layer's
// activation on each row. rank_logits runs every layer through this, and the layer-latency table
// (funnel/layer_latency.hpp) times it, so what is measured is what ranking runs.
void ranker_dense_layer(const DenseLayerView& layer, const float* x, size_t rows, float* y);

// The co-action unit. Its cache holds, per order c, the feed's power [rows, feed_dim] followed by every
// hidden layer's output [rows, size] (the trainer's backward reads them), then one spare row.
// coaction_feed_powers writes the powers feed^c, c = 1..orders, once per feed; coaction_forward then
// runs the micro-MLP of one induction row and writes output_dim() floats: per order, the sum over the
// rows of every layer's output.
void coaction_feed_powers(const CoActionView& unit, const float* feed, size_t rows, float* cache);
void coaction_forward(const CoActionView& unit, const float* induction_row, size_t rows, float* cache, float* out);

}  // namespace funnel
