#include "train/core/atomic_file.hpp"

#include <streambuf>

#include "funnel/atomic_file.hpp"
#include "train/core/errors.hpp"

namespace funnel::train {

namespace {

void check(const Status& status) {
  if (!status) throw TrainingError(status.message());
}

// Buffers the stream's characters and hands them to the AtomicFile in blocks; the first failed write
// makes the stream bad and is reported by commit().
class AtomicFileBuffer final : public std::streambuf {
 public:
  explicit AtomicFileBuffer(AtomicFile* file) : file_(file), buffer_(1 << 16) { setp(buffer_.data(), buffer_.data() + buffer_.size()); }

  const Status& status() const { return status_; }

 protected:
  int_type overflow(int_type c) override {
    if (!drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(c, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override { return drain() ? 0 : -1; }

 private:
  bool drain() {
    if (!status_) return false;
    const size_t pending = static_cast<size_t>(pptr() - pbase());
    if (pending) status_ = file_->write(pbase(), pending);
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    return status_.is_ok();
  }

  AtomicFile* file_;
  std::vector<char> buffer_;
  Status status_;
};

}  // namespace

void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  check(funnel::write_file_atomically(path, bytes.data(), bytes.size()));
}

void write_file_atomically(const std::string& path, std::string_view text) { check(funnel::write_file_atomically(path, text)); }

struct AtomicTextFile::State {
  AtomicFile file;
  AtomicFileBuffer buffer{&file};
  std::ostream stream{&buffer};
};

AtomicTextFile::AtomicTextFile(const std::string& path) : state_(std::make_unique<State>()) { check(state_->file.open(path)); }

AtomicTextFile::~AtomicTextFile() = default;  // AtomicFile's destructor removes an uncommitted temporary

std::ostream& AtomicTextFile::stream() { return state_->stream; }

void AtomicTextFile::commit() {
  state_->stream.flush();
  check(state_->buffer.status());
  if (!state_->stream) throw TrainingError(state_->file.path() + ": cannot write");
  check(state_->file.commit());
}

}  // namespace funnel::train
