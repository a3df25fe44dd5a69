// What the JS binding needs beyond the C ABI.
#include <emscripten/emscripten.h>

#include <cstddef>
#include <string>

#include "funnel/encoding.hpp"
#include "funnel_c.h"

// The JS loader (wasm/js/api.mjs) reads and writes the C ABI's structs at fixed wasm32 offsets:
// FEATURE_INFO_BYTES = 20 (five 32-bit words), REQUEST_WORDS = 12 (32-bit words in the header's order) and
// four doubles of timings. A change to funnel_c.h that moves any of them stops this build;
// tests/js/layout.test.mjs checks api.mjs against the header.
static_assert(sizeof(void*) == 4 && sizeof(size_t) == 4, "the JS loader reads pointers and sizes as 32-bit words");
static_assert(sizeof(FunnelFeatureInfo) == 20 && offsetof(FunnelFeatureInfo, name) == 0 && offsetof(FunnelFeatureInfo, kind) == 4 &&
                  offsetof(FunnelFeatureInfo, cardinality) == 8 && offsetof(FunnelFeatureInfo, vocabulary_size) == 12 &&
                  offsetof(FunnelFeatureInfo, hash_buckets) == 16,
              "api.mjs: FEATURE_INFO_BYTES and inspect()'s five words");
static_assert(sizeof(FunnelCascadeRequest) == 13 * 4 && offsetof(FunnelCascadeRequest, k) == 0 &&
                  offsetof(FunnelCascadeRequest, retrieve_k) == 4 && offsetof(FunnelCascadeRequest, behaviours) == 8 &&
                  offsetof(FunnelCascadeRequest, behaviour_count) == 12 && offsetof(FunnelCascadeRequest, candidates) == 16 &&
                  offsetof(FunnelCascadeRequest, candidate_count) == 20 && offsetof(FunnelCascadeRequest, exclude) == 24 &&
                  offsetof(FunnelCascadeRequest, exclude_count) == 28 && offsetof(FunnelCascadeRequest, allow) == 32 &&
                  offsetof(FunnelCascadeRequest, allow_count) == 36 && offsetof(FunnelCascadeRequest, threads) == 40 &&
                  offsetof(FunnelCascadeRequest, prerank_k) == 44 && offsetof(FunnelCascadeRequest, skip) == 48,
              "api.mjs: REQUEST_WORDS and the order cascade() writes the request's words in");
static_assert(sizeof(FunnelCascadeTimings) == 32 && offsetof(FunnelCascadeTimings, retrieval_ms) == 0 &&
                  offsetof(FunnelCascadeTimings, ranking_ms) == 8 && offsetof(FunnelCascadeTimings, total_ms) == 16 &&
                  offsetof(FunnelCascadeTimings, pre_ranking_ms) == 24,
              "api.mjs: the timings cascade() reads (four doubles)");

extern "C" {

// Numbers inside lists become keys exactly as the CLI and the SDK spell them (1 -> "1", 0.5 -> "0.5").
// The result stays valid until the next call.
EMSCRIPTEN_KEEPALIVE const char* funnel_wasm_number_to_key(double value) {
  static std::string key;
  key = funnel::number_to_key(value);
  return key.c_str();
}

}  // extern "C"
