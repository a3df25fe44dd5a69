// Errors travel as values: the SDK is built without exceptions (WASM size, mobile).
#pragma once

#include <string>
#include <utility>

namespace funnel {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument = 1,  // the caller passed something unusable (a missing feature, k = 0, ...)
  kNotFound = 2,         // a file, a feature or an item key does not exist
  kIoError = 3,          // the operating system refused (open, mmap, read)
  kCorruptModel = 4,     // the bytes are not a valid Funnel model file
  kUnsupported = 5,      // a valid file that needs a newer SDK
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "CorruptModel: tensor 'user/w0' ..." — what a log line or an exception in a binding should say.
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

}  // namespace funnel
