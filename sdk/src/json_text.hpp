// JSON text written by the SDK (the layer-latency table, a bundle's lineage) without a JSON library: the SDK
// depends on FlatBuffers and the standard library alone. Internal to the SDK.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace funnel {

// `text` as a JSON string, quotes included.
inline void append_json_string(std::string* out, std::string_view text) {
  out->push_back('"');
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      out->append(escaped);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace funnel
