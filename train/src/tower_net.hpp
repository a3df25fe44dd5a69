// A trainable tower: per-feature embedding bags -> [Linear -> ReLU]* -> Linear -> L2 normalisation.
// Its parameters are laid out as the SDK reads them, so view() hands the SDK the very same floats.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "config.hpp"
#include "dataset.hpp"
#include "funnel/tower.hpp"
#include "layers.hpp"
#include "parameter.hpp"
#include "rng.hpp"

namespace funnel::train {

class TowerNet {
 public:
  // `first_feature`: the table's first feature index in the model's feature order.
  TowerNet(const EntityTable& table, size_t first_feature, const TrainConfig& config, const std::string& prefix, Rng& rng);

  size_t output_dim() const { return linears_.back().out(); }
  // Output rows for the given entity rows ([rows.size(), output_dim()]); valid until the next forward.
  const float* forward(std::span<const uint32_t> rows);
  // Accumulates parameter gradients for the last forward's rows from d loss / d output.
  void backward(const float* d_output);
  // The last forward's output.
  const float* output() const { return output_.data(); }

  std::vector<Parameter*> parameters();
  // Embedding table of input feature f (nullptr for a dense feature).
  const Parameter* embedding(size_t f) const { return embeddings_[f]; }
  TowerView view() const;

 private:
  const EntityTable& table_;
  size_t first_feature_;
  std::vector<std::unique_ptr<Parameter>> storage_;
  std::vector<Parameter*> embeddings_;  // per table feature; nullptr for dense
  std::vector<EmbeddingBag> bags_;      // per categorical feature, in feature order
  std::vector<Linear> linears_;
  size_t input_dim_ = 0;

  std::vector<uint32_t> rows_;
  std::vector<std::vector<float>> activations_;  // a0 (input) .. aL (last linear's output)
  std::vector<float> output_;
  std::vector<float> grad_a_, grad_b_;
};

}  // namespace funnel::train
