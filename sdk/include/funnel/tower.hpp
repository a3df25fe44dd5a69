// A tower (embedding bags -> dense layers -> optional L2 normalisation) as plain views over float
// arrays. The loader points the views into the model file; the trainer points them into its own
// parameters, so training-time evaluation and the SDK run the same code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "funnel/features.hpp"

namespace funnel {

// L2 normalisation divides by max(||x||, kL2Epsilon), so that an all-zero output stays finite. The trainer's
// L2 layer divides by the same, so trained and served embeddings agree.
inline constexpr float kL2Epsilon = 1e-12f;

enum class Activation : uint8_t { kNone = 0, kRelu = 1, kTanh = 2, kPRelu = 3 };
enum class Pooling : uint8_t { kMean = 0, kSum = 1 };

struct TowerInputView {
  uint32_t feature = 0;          // model feature index
  const float* table = nullptr;  // [rows, dim]; nullptr for a dense feature (one value)
  uint32_t rows = 0;
  uint32_t dim = 1;
  Pooling pooling = Pooling::kMean;
};

struct DenseLayerView {
  const float* weight = nullptr;  // [out, in], row-major
  const float* bias = nullptr;    // [out]
  uint32_t in = 0;
  uint32_t out = 0;
  Activation activation = Activation::kNone;
  const float* alpha = nullptr;  // [out], PRelu only
};

// Applies the layer's activation to its `out` outputs in place.
void activate(const DenseLayerView& layer, float* y);

struct TowerView {
  std::vector<TowerInputView> inputs;
  std::vector<DenseLayerView> layers;
  bool l2_normalize = true;

  uint32_t input_dim() const;
  uint32_t output_dim() const;
  // Floats of scratch that forward() needs.
  size_t scratch_size() const;
};

// Runs the tower for one entity. Ids must already be in range (the encoder guarantees it).
// `scratch` holds at least tower.scratch_size() floats; `out` receives output_dim() floats.
void tower_forward(const TowerView& tower, const EncodedFeatures& features, float* scratch, float* out);

}  // namespace funnel
