// The rules that turn a raw value into an id. The trainer builds its vocabularies with these same
// functions, so an id means the same thing at training time and in the SDK.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace funnel {

// The string a number becomes when a categorical feature is given a number: integers print without a
// decimal point ("196"), so a user id read from a CSV and one passed as a JSON number agree.
std::string number_to_key(double value);

// 1 + the number of boundaries <= x, so ids 1..boundaries.size() + 1 (0 stays out-of-vocabulary).
uint32_t bucketize(std::span<const float> boundaries, double x);

// 1 + fnv1a64(value) % buckets.
uint32_t hash_bucket(std::string_view value, uint32_t buckets);

// The first prefix_length bytes (all of them when prefix_length is 0).
std::string_view key_prefix(std::string_view value, uint32_t prefix_length);

// Values of a multi-valued feature given as one string; empty parts are dropped ("a||b" -> a, b).
std::vector<std::string_view> split_values(std::string_view text, std::string_view separator);

// A whole string as a number (no trailing garbage); false for "", "12abc", and strings over 64 bytes.
bool parse_number(std::string_view text, double* out);

// How a categorical feature turns a raw string into an id, in the one order the trainer (building its
// vocabularies) and the SDK (serving) both apply: the prefix is cut first; then hashing when the feature
// hashes, else its boundaries when it has some (a value that is not a number is `oov_id`), else
// `lookup(key)`, the vocabulary's id of the key.
struct KeyRule {
  uint32_t prefix_length = 0;
  uint32_t hash_buckets = 0;
  std::span<const float> boundaries;
  uint32_t oov_id = 0;
};

template <typename Lookup>
uint32_t encode_key(const KeyRule& rule, std::string_view raw, Lookup&& lookup) {
  const std::string_view key = key_prefix(raw, rule.prefix_length);
  if (rule.hash_buckets > 0) return hash_bucket(key, rule.hash_buckets);
  if (!rule.boundaries.empty()) {
    double x = 0;
    return parse_number(key, &x) ? bucketize(rule.boundaries, x) : rule.oov_id;
  }
  return lookup(key);
}

// A list of keys (a vocabulary, the catalogue's or the item table's keys) as the model file's StringTable
// stores it: the keys end to end, where each one ends, and their positions in bytewise order (which the
// SDK binary-searches). The exporter and the SDK's catalogue updates write keys through this.
struct PackedStrings {
  std::vector<uint8_t> bytes;
  std::vector<uint32_t> ends;
  std::vector<uint32_t> order;
};
PackedStrings pack_strings(const std::vector<std::string>& keys);

}  // namespace funnel
