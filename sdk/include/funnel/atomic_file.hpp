// Writing a file whole or not at all. Every file Funnel writes goes through here: model files (exports,
// saved catalogue updates, bundles), checkpoints, reports, metrics logs, latency tables, generated datasets.
// The SDK's own saves use it, and the trainer, which links the SDK, uses the same code.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "funnel/status.hpp"

namespace funnel {

// A new file that replaces `path` only when committed:
// - open() creates a temporary file with a unique name in path's folder, "<path>.tmp-<pid>-<n>"
//   (O_CREAT | O_EXCL: never one another writer or an earlier run left behind); a symlink is followed, so
//   the temporary lies beside the file it names and the link is kept; an existing file's mode is kept;
// - write() appends bytes to it;
// - commit() flushes it to disk (fsync), closes it, renames it over `path` and flushes the folder (fsync),
//   so that after a crash or a power cut `path` is the old file or the new one, whole.
// Any failed step, discard(), or destroying an uncommitted AtomicFile removes the temporary. A process
// killed outright (SIGKILL, power cut) before commit leaves `path` as it was and, at most, its temporary,
// which nothing reads and no later write reuses (a later write picks another name).
// A `path` that exists and is not a regular file (/dev/stdout, a FIFO, /dev/null) cannot be replaced: it is
// written directly, with no temporary, and commit() only closes it.
// Errors are kIoError and name the file and the reason ("model.funnel: cannot create a temporary file in
// the folder: Permission denied"). After an error every later call returns that same error.
class AtomicFile {
 public:
  AtomicFile() = default;
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  Status open(const std::string& path);
  Status write(const void* data, size_t size);
  Status commit();
  void discard();

  const std::string& path() const { return path_; }
  const std::string& temporary_path() const { return temporary_; }

 private:
  Status fail(const std::string& what, int error);

  std::string path_, target_, temporary_;  // target_: path_ with its symlinks resolved
  int fd_ = -1;
  bool direct_ = false;  // writing straight into a `path` that is not a regular file
  Status failed_;
};

// open, write, commit in one call.
Status write_file_atomically(const std::string& path, const void* data, size_t size);
inline Status write_file_atomically(const std::string& path, std::string_view bytes) {
  return write_file_atomically(path, bytes.data(), bytes.size());
}

}  // namespace funnel
