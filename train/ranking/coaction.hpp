// The co-action unit of CAN (Bian et al., WSDM 2022), trainer side: the SDK's forward pass
// (sdk/src/coaction.cpp) with its cache kept, and the backward into the induction row (the
// micro-MLP's parameters) and the feed embeddings.
#pragma once

#include <cstddef>
#include <vector>

#include "funnel/ranker.hpp"

namespace funnel::train {

class CoActionUnit {
 public:
  // `shape` gives the layer sizes, bias, orders and order independence; its table pointers are unused.
  explicit CoActionUnit(const CoActionView& shape);
  const CoActionView& shape() const { return shape_; }

  // Floats of cache one forward over `rows` feed vectors needs.
  size_t cache_size(size_t rows) const { return shape_.cache_size(rows); }
  // Floats of scratch backward() needs.
  size_t scratch_size(size_t rows) const;

  // out (output_dim floats) = per order c, the sum over the rows of every layer's output for the input
  // feed^c (eq. 11), the micro-MLP's weights read from induction_row (eq. 5-9).
  void forward(const float* induction_row, const float* feed, size_t rows, float* cache, float* out) const;
  // Adds d loss / d induction_row to dinduction (induction_width() floats) and d loss / d feed to
  // dfeed (rows x feed_dim), given dout = d loss / d out and the forward's cache.
  void backward(const float* induction_row, size_t rows, const float* cache, const float* dout, float* scratch,
                float* dinduction, float* dfeed) const;

 private:
  CoActionView shape_;
  size_t block_;        // floats of one order's micro-MLP
  size_t order_cache_;  // cache floats per row and order: the input power and every hidden layer
  size_t widest_;
  // Per layer: offset of W_l in a block, of its output in one order's dout, and its input width.
  std::vector<size_t> weight_at_, dout_at_, in_of_;
  size_t outputs_per_order_ = 0;
};

}  // namespace funnel::train
