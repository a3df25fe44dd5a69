#include "funnel/features.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "finite.hpp"

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

Status not_finite(StatusCode code, double value, const char* why, const char* format, ...) {
  va_list args, again;
  va_start(args, format);
  va_copy(again, args);
  std::string message(static_cast<size_t>(std::max(std::vsnprintf(nullptr, 0, format, args), 0)), '\0');
  va_end(args);
  std::vsnprintf(message.data(), message.size() + 1, format, again);
  va_end(again);
  char tail[64];
  std::snprintf(tail, sizeof tail, " is %.9g, not a finite number", value);  // %.9g as number_to_key spells it
  return {code, message + tail + why};
}

Status check_feature_number(std::string_view name, double value) {
  if (std::isfinite(value)) return Status::ok();
  return not_finite(StatusCode::kInvalidArgument, value, "", "feature '%.*s'", static_cast<int>(name.size()), name.data());
}

void EncodedFeatures::reset(size_t feature_count) {
  offsets.assign(feature_count + 1, 0);
  ids.clear();
  dense.assign(feature_count, 0.0f);
}

}  // namespace funnel
