// The FlatBuffers verifier's limits for a model file, one fact shared by every place that verifies one
// (Model::open and seal_model_file), so that a file one of them accepts the other accepts too.
#pragma once

#include <flatbuffers/flatbuffers.h>

namespace funnel {

inline flatbuffers::Verifier::Options model_verifier_options() {
  flatbuffers::Verifier::Options options;
  options.max_depth = 32;
  options.max_tables = 10'000'000;  // a catalogue's features are tables: the default (1,000,000) is too few
  return options;
}

}  // namespace funnel
