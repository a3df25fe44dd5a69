// Loading a model in two halves: model.cpp opens, verifies (FlatBuffers) and serves it; model_binding.cpp
// checks what the verifier cannot and binds the views the SDK computes with. Internal to the SDK.
#pragma once

#include <string>
#include <string_view>

#include "funnel/model.hpp"
#include "funnel/status.hpp"
#include "funnel_generated.h"

namespace funnel {

class ModelBinding {
 public:
  // The semantic checks of a verified file (format version, tensors, features, the item table), then each
  // stage's views (the ranking and pre-ranking stages, the retrieval towers and catalogue) with their wiring
  // checked: everything the kernels will index is proven in range here, once, so the hot paths need no
  // checks of their own.
  static Status bind(Model& model);
};

Status corrupt(std::string message);

inline std::string_view view_of(const flatbuffers::String* s) { return s ? std::string_view(s->data(), s->size()) : std::string_view(); }

}  // namespace funnel
