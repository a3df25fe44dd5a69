// Raw feature values as an application has them, and the encoded form the kernels consume.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "funnel/status.hpp"

namespace funnel {

// One raw value: a string, a number, or a list of strings (a multi-valued feature).
class FeatureValue {
 public:
  enum class Type { kString, kNumber, kList };

  static FeatureValue of_string(std::string value);
  static FeatureValue of_number(double value);
  static FeatureValue of_list(std::vector<std::string> values);

  Type type() const { return type_; }
  const std::string& string_value() const { return string_; }
  double number_value() const { return number_; }
  const std::vector<std::string>& list_value() const { return list_; }

 private:
  Type type_ = Type::kString;
  std::string string_;
  double number_ = 0;
  std::vector<std::string> list_;
};

// A user's (or an item's) raw features by name. Small and linear: requests carry a handful of features.
class Features {
 public:
  Features& set(std::string name, FeatureValue value);
  Features& set(std::string name, std::string value) { return set(std::move(name), FeatureValue::of_string(std::move(value))); }
  Features& set(std::string name, const char* value) { return set(std::move(name), std::string(value)); }
  Features& set(std::string name, double value) { return set(std::move(name), FeatureValue::of_number(value)); }
  Features& set(std::string name, std::vector<std::string> values) {
    return set(std::move(name), FeatureValue::of_list(std::move(values)));
  }

  const FeatureValue* find(std::string_view name) const;
  const std::vector<std::pair<std::string, FeatureValue>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, FeatureValue>> entries_;
};

// A number given as a feature's value must be finite (the trainer refuses NaN and infinities too): an
// InvalidArgument status naming the feature otherwise. Model::encode and the C ABI's
// funnel_features_set_number apply it.
Status check_feature_number(std::string_view name, double value);

// Encoded features of one entity, indexed by the model's feature index: ids of feature f are
// ids[offsets[f] .. offsets[f + 1]), and dense[f] holds the normalised value of a dense feature.
struct EncodedFeatures {
  std::vector<uint32_t> offsets;
  std::vector<uint32_t> ids;
  std::vector<float> dense;

  void reset(size_t feature_count);
  std::span<const uint32_t> ids_of(size_t feature) const {
    return {ids.data() + offsets[feature], ids.data() + offsets[feature + 1]};
  }
};

}  // namespace funnel
