#include "funnel/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace funnel {

namespace {

// The folder holding `path` ("." for a bare name), whose entry the rename changes.
std::string folder_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Makes the rename itself durable. A file system that cannot sync a folder says EINVAL (or EROFS for some
// pseudo file systems): there is nothing more to do there.
int sync_folder(const std::string& folder) {
#ifdef __EMSCRIPTEN__
  (void)folder;
  return 0;  // the in-memory and Node file systems have nothing to flush
#else
  const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int error = 0;
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) error = errno;
  ::close(fd);
  return error;
#endif
}

std::atomic<unsigned> temporary_counter{0};

}  // namespace

AtomicFile::~AtomicFile() { discard(); }

Status AtomicFile::fail(const std::string& what, int error) {
  discard();
  failed_ = Status(StatusCode::kIoError, path_ + ": " + what + ": " + std::strerror(error));
  return failed_;
}

void AtomicFile::discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temporary_.empty()) ::unlink(temporary_.c_str());
  temporary_.clear();
  direct_ = false;
}

Status AtomicFile::open(const std::string& path) {
  discard();
  path_ = path;
  failed_ = Status::ok();
  if (path.empty() || path.back() == '/') {
    failed_ = Status(StatusCode::kInvalidArgument, "'" + path + "' is not a file name");
    return failed_;
  }
  // A symlink is followed: the new file replaces what it names (beside it, in its folder), not the link.
  target_ = path;
  if (char resolved[PATH_MAX]; ::realpath(path.c_str(), resolved)) target_ = resolved;
  struct stat existing;
  const bool exists = ::stat(target_.c_str(), &existing) == 0;
  if (exists && !S_ISREG(existing.st_mode)) {
    // A device, FIFO or the like (--report /dev/stdout): renaming over it would replace it, so write into it.
    const int fd = ::open(target_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail("cannot open for writing", errno);
    fd_ = fd;
    direct_ = true;
    return Status::ok();
  }
  // A name no other writer holds: this process's id and a counter, created exclusively; a name an earlier,
  // killed run left behind (same pid after a reboot or in another container) is skipped.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const std::string candidate = target_ + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(temporary_counter++);
    const int fd = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) {
      fd_ = fd;
      temporary_ = candidate;
      // The file replaced keeps its permissions (the temporary was made with the umask's).
      if (exists && ::fchmod(fd, existing.st_mode & 07777) != 0) return fail("cannot keep the file's mode", errno);
      return Status::ok();
    }
    if (errno != EEXIST) return fail("cannot create a temporary file in its folder", errno);
  }
  return fail("cannot create a temporary file in its folder", EEXIST);
}

Status AtomicFile::write(const void* data, size_t size) {
  if (!failed_) return failed_;
  if (fd_ < 0) return Status(StatusCode::kInvalidArgument, path_ + ": write before open");
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("cannot write", errno);
    if (n == 0) return fail("cannot write", EIO);
    bytes += n;
    size -= static_cast<size_t>(n);
  }
  return Status::ok();
}

Status AtomicFile::commit() {
  if (!failed_) return failed_;
  if (fd_ < 0) return Status(StatusCode::kInvalidArgument, path_ + ": commit before open");
  if (direct_) {
    const int fd = fd_;
    fd_ = -1;
    direct_ = false;
    if (::close(fd) != 0) return fail("cannot write (on close)", errno);
    return Status::ok();
  }
  if (::fsync(fd_) != 0) return fail("cannot flush to disk", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return fail("cannot write (on close)", errno);
  if (std::rename(temporary_.c_str(), target_.c_str()) != 0) return fail("cannot rename '" + temporary_ + "' over it", errno);
  temporary_.clear();  // it is `path` now
  if (const int error = sync_folder(folder_of(target_)); error != 0) {
    failed_ = Status(StatusCode::kIoError, path_ + ": written, but its folder could not be flushed to disk: " + std::strerror(error));
    return failed_;
  }
  return Status::ok();
}

Status write_file_atomically(const std::string& path, const void* data, size_t size) {
  AtomicFile file;
  if (Status s = file.open(path); !s) return s;
  if (Status s = file.write(data, size); !s) return s;
  return file.commit();
}

}  // namespace funnel
