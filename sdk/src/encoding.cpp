#include "funnel/encoding.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>

namespace funnel {

std::string number_to_key(double value) {
  char buffer[32];
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 9.0e15) {
    std::snprintf(buffer, sizeof buffer, "%lld", static_cast<long long>(value));
  } else {
    std::snprintf(buffer, sizeof buffer, "%.9g", value);
  }
  return buffer;
}

uint32_t bucketize(std::span<const float> boundaries, double x) {
  if (std::isnan(x)) return 0;
  const auto it = std::upper_bound(boundaries.begin(), boundaries.end(), x,
                                   [](double value, float boundary) { return value < boundary; });
  return 1 + static_cast<uint32_t>(it - boundaries.begin());
}

uint32_t hash_bucket(std::string_view value, uint32_t buckets) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64: stable across platforms and compilers
  for (unsigned char c : value) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return 1 + static_cast<uint32_t>(h % buckets);
}

std::string_view key_prefix(std::string_view value, uint32_t prefix_length) {
  if (prefix_length == 0 || value.size() <= prefix_length) return value;
  return value.substr(0, prefix_length);
}

std::vector<std::string_view> split_values(std::string_view text, std::string_view separator) {
  std::vector<std::string_view> out;
  if (separator.empty()) {
    if (!text.empty()) out.push_back(text);
    return out;
  }
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(separator, start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + separator.size();
  }
  return out;
}

bool parse_number(std::string_view text, double* out) {
  if (text.empty() || text.size() > 64) return false;
  char buffer[65];
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  char* end = nullptr;
  const double value = std::strtod(buffer, &end);
  if (end != buffer + text.size()) return false;
  *out = value;
  return true;
}

PackedStrings pack_strings(const std::vector<std::string>& keys) {
  PackedStrings packed;
  size_t total = 0;
  for (const std::string& key : keys) total += key.size();
  packed.bytes.reserve(total);
  packed.ends.reserve(keys.size());
  for (const std::string& key : keys) {
    packed.bytes.insert(packed.bytes.end(), key.begin(), key.end());
    packed.ends.push_back(static_cast<uint32_t>(packed.bytes.size()));  // a model file is under 2 GiB
  }
  packed.order.resize(keys.size());
  std::iota(packed.order.begin(), packed.order.end(), 0u);
  std::sort(packed.order.begin(), packed.order.end(), [&keys](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
  return packed;
}

}  // namespace funnel
