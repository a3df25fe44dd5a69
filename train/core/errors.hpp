// The trainer reports bad input with exceptions that say where: file, line and field.
#pragma once

#include <stdexcept>
#include <string>

namespace funnel::train {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class TrainingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace funnel::train
