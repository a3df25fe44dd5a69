// AutoFAS's over-parameterised student (Li et al., KDD 2021, eq. 2): L Mixops, each a softmax(alpha)-
// weighted sum of candidate operators, trained by back-propagation beside its architecture weights alpha.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "train/core/layers.hpp"
#include "train/core/parameter.hpp"
#include "train/core/rng.hpp"
#include "train/pre_ranking/latency.hpp"

namespace funnel::train {

// The over-parameterised student: input [batch, input_dim] zero-padded to `width` = max(input_dim, the
// largest operator), L Mixops whose dense operators read the `width` floats and write theirs padded to
// `width` (the paper's zero padding), then one output logit. Dense operators use ReLU.
class Supernet {
 public:
  Supernet(size_t input_dim, uint32_t mixops, Operators operators, Rng& rng);
  Supernet(const Supernet&) = delete;
  Supernet& operator=(const Supernet&) = delete;

  void forward(const float* x, size_t batch, float* logits);
  // From d loss / d logit: accumulates every weight's and every alpha's gradient.
  void backward(std::span<const float> dlogits);

  // softmax(alpha) per Mixop.
  std::vector<std::vector<double>> probabilities() const;
  // Adds d loss / d p (e.g. lambda2 d E[lat'] / d p) into alpha's gradient through the softmax.
  void add_probability_gradient(const std::vector<std::vector<double>>& dp);
  Parameter& alpha() { return alpha_; }
  std::vector<Parameter*> weights();
  const Operators& operators() const { return operators_; }
  uint32_t mixops() const { return mixops_; }
  size_t input_dim() const { return input_dim_; }

 private:
  size_t input_dim_, width_;
  uint32_t mixops_;
  Operators operators_;
  Parameter alpha_;                                 // [mixops, operators]
  std::vector<std::unique_ptr<Parameter>> owned_;
  std::vector<std::vector<Linear>> dense_;          // [mixop][operator]; unused for the identity
  std::unique_ptr<Parameter> out_weight_, out_bias_;
  std::unique_ptr<Linear> out_;
  // The last forward: each Mixop's input, each dense operator's output (after ReLU), the last output.
  size_t batch_ = 0;
  std::vector<std::vector<float>> h_;                // [mixops + 1][batch, width]
  std::vector<std::vector<std::vector<float>>> y_;   // [mixop][operator][batch, w]
  std::vector<float> grad_, grad_next_, grad_op_;
};

}  // namespace funnel::train
