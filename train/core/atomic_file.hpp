// The trainer's writes, through the SDK's one atomic write (funnel/atomic_file.hpp): a whole new file or
// the old one, never half of one. These wrappers only turn its Status into the trainer's exceptions.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace funnel::train {

// Writes bytes to a unique temporary file beside `path`, flushes it, renames it over `path` and flushes the
// folder. Throws TrainingError naming the file and the reason when any step fails; the temporary is removed
// and the old file, if any, is left as it was.
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes);
void write_file_atomically(const std::string& path, std::string_view text);

// A text file written as a stream (a generated dataset) that replaces `path` only at commit(); destroyed
// uncommitted (an exception on the way), it removes its temporary and leaves `path` as it was. The
// constructor and commit() throw TrainingError naming the file and the reason.
class AtomicTextFile {
 public:
  explicit AtomicTextFile(const std::string& path);
  ~AtomicTextFile();
  AtomicTextFile(const AtomicTextFile&) = delete;
  AtomicTextFile& operator=(const AtomicTextFile&) = delete;

  std::ostream& stream();
  template <typename T>
  AtomicTextFile& operator<<(const T& value) {
    stream() << value;
    return *this;
  }
  void commit();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace funnel::train
