// What the JS binding needs beyond the C ABI.
#include <emscripten/emscripten.h>

#include <string>

#include "funnel/encoding.hpp"

extern "C" {

// Numbers inside lists become keys exactly as the CLI and the SDK spell them (1 -> "1", 0.5 -> "0.5").
// The result stays valid until the next call.
EMSCRIPTEN_KEEPALIVE const char* funnel_wasm_number_to_key(double value) {
  static std::string key;
  key = funnel::number_to_key(value);
  return key.c_str();
}

}  // extern "C"
