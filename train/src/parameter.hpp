// A trainable tensor: values, gradients, and the rows a sparse gradient touched.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace funnel::train {

struct Parameter {
  std::string name;
  std::vector<uint64_t> shape;
  std::vector<float> value;
  std::vector<float> grad;

  Parameter(std::string name_, std::vector<uint64_t> shape_) : name(std::move(name_)), shape(std::move(shape_)) {
    size_t n = 1;
    for (uint64_t d : shape) n *= static_cast<size_t>(d);
    value.assign(n, 0.0f);
    grad.assign(n, 0.0f);
  }
  size_t size() const { return value.size(); }
  void zero_grad() { std::fill(grad.begin(), grad.end(), 0.0f); }
};

}  // namespace funnel::train
