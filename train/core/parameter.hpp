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
  // Embedding tables record the rows a step's gradient touched, so that a lazy optimiser can update
  // those rows alone (rows of row_size floats).
  bool sparse = false;
  size_t row_size = 0;
  std::vector<uint32_t> touched;
  std::vector<uint8_t> is_touched;

  Parameter(std::string name_, std::vector<uint64_t> shape_) : name(std::move(name_)), shape(std::move(shape_)) {
    size_t n = 1;
    for (uint64_t d : shape) n *= static_cast<size_t>(d);
    value.assign(n, 0.0f);
    grad.assign(n, 0.0f);
  }
  size_t size() const { return value.size(); }
  void make_sparse(size_t row_floats) {
    sparse = true;
    row_size = row_floats;
    is_touched.assign(value.size() / row_floats, 0);
  }
  void touch(uint32_t row) {
    if (!is_touched[row]) {
      is_touched[row] = 1;
      touched.push_back(row);
    }
  }
  void zero_grad() { std::fill(grad.begin(), grad.end(), 0.0f); }
};

}  // namespace funnel::train
