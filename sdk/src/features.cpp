#include "funnel/features.hpp"

namespace funnel {

FeatureValue FeatureValue::of_string(std::string value) {
  FeatureValue v;
  v.type_ = Type::kString;
  v.string_ = std::move(value);
  return v;
}

FeatureValue FeatureValue::of_number(double value) {
  FeatureValue v;
  v.type_ = Type::kNumber;
  v.number_ = value;
  return v;
}

FeatureValue FeatureValue::of_list(std::vector<std::string> values) {
  FeatureValue v;
  v.type_ = Type::kList;
  v.list_ = std::move(values);
  return v;
}

Features& Features::set(std::string name, FeatureValue value) {
  for (auto& entry : entries_) {
    if (entry.first == name) {
      entry.second = std::move(value);
      return *this;
    }
  }
  entries_.emplace_back(std::move(name), std::move(value));
  return *this;
}

const FeatureValue* Features::find(std::string_view name) const {
  for (const auto& entry : entries_)
    if (entry.first == name) return &entry.second;
  return nullptr;
}

void EncodedFeatures::reset(size_t feature_count) {
  offsets.assign(feature_count + 1, 0);
  ids.clear();
  dense.assign(feature_count, 0.0f);
}

}  // namespace funnel
