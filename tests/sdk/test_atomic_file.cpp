// The one atomic write (funnel/atomic_file.hpp) that every file Funnel writes goes through: failures that
// really happen to root (a parent that is a file, a folder the writer may not change, a file-size limit
// hit mid-write) fail cleanly, name the file and the reason, keep the old file and leave no temporary; a
// process killed with SIGKILL in the middle of a write leaves the old file whole.
#include <grp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "funnel/atomic_file.hpp"
#include "funnel/funnel.hpp"

using Catch::Matchers::Contains;
using funnel::AtomicFile;
using funnel::Status;
using funnel::StatusCode;
namespace fs = std::filesystem;

namespace {

const std::string kGolden = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/golden";

struct Folder {
  std::string path;
  Folder() {
    std::random_device device;
    path = (fs::temp_directory_path() / ("funnel-atomic-" + std::to_string(device()) + std::to_string(device()))).string();
    fs::create_directories(path);
  }
  ~Folder() {
    std::error_code ignored;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ignored);
    fs::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& entry : fs::directory_iterator(path)) out.push_back(entry.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
};

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_plain(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// Runs `body` in a child process and returns what it wrote to its pipe ("" when it wrote nothing) and its
// exit status. The child never returns into the test runner.
struct ChildResult {
  std::string message;
  int status = 0;
};
template <typename Body>
ChildResult in_child(Body body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    const std::string message = body();
    const ssize_t written = ::write(fds[1], message.data(), message.size());
    ::_exit(written == static_cast<ssize_t>(message.size()) ? 0 : 3);
  }
  ::close(fds[1]);
  ChildResult result;
  char buffer[512];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) result.message.append(buffer, static_cast<size_t>(n));
  ::close(fds[0]);
  ::waitpid(pid, &result.status, 0);
  return result;
}

std::string status_line(const Status& status) { return status ? "ok" : status.to_string(); }

}  // namespace

TEST_CASE("Atomic write: the new bytes replace the old file, and no temporary is left", "[atomic]") {
  Folder folder;
  const std::string path = folder.file("table.json");
  write_plain(path, "old");
  REQUIRE(funnel::write_file_atomically(path, std::string_view("new contents\n")).is_ok());
  CHECK(read_text(path) == "new contents\n");
  CHECK(folder.names() == std::vector<std::string>{"table.json"});
  // A bare name is relative to the working folder, which the rename and the folder's flush use too.
  AtomicFile file;
  REQUIRE(file.open(path).is_ok());
  CHECK(file.temporary_path().rfind(path + ".tmp-" + std::to_string(::getpid()) + "-", 0) == 0);
  CHECK(fs::exists(file.temporary_path()));
  REQUIRE(file.write("ab", 2).is_ok());
  REQUIRE(file.write("cd", 2).is_ok());
  CHECK(read_text(path) == "new contents\n");  // nothing changes before commit
  REQUIRE(file.commit().is_ok());
  CHECK(read_text(path) == "abcd");
  CHECK(folder.names() == std::vector<std::string>{"table.json"});
  // Dropped before commit: the temporary goes, the file stays.
  {
    AtomicFile dropped;
    REQUIRE(dropped.open(path).is_ok());
    REQUIRE(dropped.write("xyz", 3).is_ok());
  }
  CHECK(read_text(path) == "abcd");
  CHECK(folder.names() == std::vector<std::string>{"table.json"});
}

TEST_CASE("Atomic write: a symlink is kept and what it names replaced; an existing file keeps its mode", "[atomic]") {
  Folder folder;
  fs::create_directories(folder.file("real"));
  const std::string target = folder.file("real/model.funnel"), link = folder.file("link.funnel");
  write_plain(target, "old");
  fs::create_symlink("real/model.funnel", link);
  REQUIRE(::chmod(target.c_str(), 0640) == 0);
  REQUIRE(funnel::write_file_atomically(link, std::string_view("new")).is_ok());
  CHECK(fs::is_symlink(link));
  CHECK(read_text(target) == "new");
  CHECK(folder.names() == std::vector<std::string>{"link.funnel", "real"});
  CHECK(fs::directory_iterator(folder.file("real"))->path().filename() == "model.funnel");
  struct stat after;
  REQUIRE(::stat(target.c_str(), &after) == 0);
  CHECK((after.st_mode & 07777) == 0640);
  // A plain file keeps its mode too, though the temporary was created with the umask's.
  const std::string plain = folder.file("run.sh");
  write_plain(plain, "old");
  REQUIRE(::chmod(plain.c_str(), 0751) == 0);
  REQUIRE(funnel::write_file_atomically(plain, std::string_view("new")).is_ok());
  REQUIRE(::stat(plain.c_str(), &after) == 0);
  CHECK((after.st_mode & 07777) == 0751);
}

TEST_CASE("Atomic write: a path that is not a regular file (/dev/null, a FIFO as /dev/stdout is) is written into, not replaced",
          "[atomic]") {
  REQUIRE(funnel::write_file_atomically("/dev/null", std::string_view("discarded")).is_ok());
  CHECK(fs::is_character_file("/dev/null"));
  Folder folder;
  const std::string fifo = folder.file("pipe");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::string received;
  std::thread reader([&] { received = read_text(fifo); });
  const Status status = funnel::write_file_atomically(fifo, std::string_view("through the pipe\n"));
  reader.join();
  INFO(status.to_string());
  CHECK(status.is_ok());
  CHECK(received == "through the pipe\n");
  CHECK(fs::is_fifo(fifo));
  CHECK(folder.names() == std::vector<std::string>{"pipe"});
}

TEST_CASE("Atomic write: a parent path that is a file fails with the path and the reason", "[atomic][errors]") {
  Folder folder;
  write_plain(folder.file("plain"), "a file, not a folder");
  const std::string path = folder.file("plain/model.funnel");
  const Status status = funnel::write_file_atomically(path, std::string_view("bytes"));
  REQUIRE_FALSE(status.is_ok());
  CHECK(status.code() == StatusCode::kIoError);
  CHECK_THAT(status.message(), Contains(path) && Contains("Not a directory"));
  CHECK(read_text(folder.file("plain")) == "a file, not a folder");
  CHECK(folder.names() == std::vector<std::string>{"plain"});
  // A missing folder, and a name that is no file name.
  CHECK_THAT(funnel::write_file_atomically(folder.file("none/x"), std::string_view("b")).message(), Contains("No such file or directory"));
  CHECK(funnel::write_file_atomically(folder.path + "/", std::string_view("b")).code() == StatusCode::kInvalidArgument);
  // The SDK's own save goes the same way.
  std::unique_ptr<funnel::Model> model;
  REQUIRE(funnel::Model::load_file(kGolden + "/retrieval.funnel", &model).is_ok());
  const Status saved = model->save(path);
  CHECK(saved.code() == StatusCode::kIoError);
  CHECK_THAT(saved.message(), Contains(path) && Contains("Not a directory"));
}

TEST_CASE("Atomic write: a folder the writer may not change fails cleanly and keeps the old file", "[atomic][errors]") {
  // Root ignores permission bits, so the child drops to 'nobody' (uid and gid 65534) first; a non-root
  // runner takes the folder's write permission away instead.
  Folder folder;
  const std::string path = folder.file("model.funnel");
  write_plain(path, "the old model");
  const bool root = ::geteuid() == 0;
  if (!root) fs::permissions(folder.path, fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write, fs::perm_options::remove);
  const ChildResult child = in_child([&] {
    if (root && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)) return std::string("cannot drop root");
    return status_line(funnel::write_file_atomically(path, std::string_view("the new model")));
  });
  if (!root) fs::permissions(folder.path, fs::perms::owner_write, fs::perm_options::add);
  INFO(child.message);
  CHECK(WIFEXITED(child.status));
  CHECK_THAT(child.message, Contains("IoError") && Contains(path) && Contains("Permission denied"));
  CHECK(read_text(path) == "the old model");
  CHECK(folder.names() == std::vector<std::string>{"model.funnel"});
}

TEST_CASE("Atomic write: a write that fails midway (file-size limit) removes its temporary and keeps the old file", "[atomic][errors]") {
  // RLIMIT_FSIZE holds for root too: the write past it fails with EFBIG (SIGXFSZ ignored).
  Folder folder;
  const std::string path = folder.file("checkpoint.bin");
  write_plain(path, "the old checkpoint");
  const std::string big(1 << 20, 'x');
  const ChildResult child = in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{64 * 1024, 64 * 1024};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return std::string("cannot set RLIMIT_FSIZE");
    return status_line(funnel::write_file_atomically(path, big));
  });
  INFO(child.message);
  CHECK_THAT(child.message, Contains("IoError") && Contains(path) && Contains("cannot write") && Contains("File too large"));
  CHECK(read_text(path) == "the old checkpoint");
  CHECK(folder.names() == std::vector<std::string>{"checkpoint.bin"});
}

TEST_CASE("Atomic write: a process killed (SIGKILL) in the middle of a write leaves the old file whole", "[atomic][kill]") {
  Folder folder;
  const std::string path = folder.file("model.funnel");
  const std::string old_bytes = read_text(kGolden + "/retrieval.funnel");
  const std::string new_bytes = read_text(kGolden + "/retrieval-int8.funnel");
  write_plain(path, old_bytes);
  // The child writes half of the new model, says so, and waits to be killed.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    AtomicFile file;
    if (!file.open(path) || !file.write(new_bytes.data(), new_bytes.size() / 2)) ::_exit(2);
    if (::write(fds[1], "w", 1) != 1) ::_exit(3);
    for (;;) ::pause();
  }
  // The parent keeps no write end open, so a child that exits early ends the read (0) rather than hanging it.
  ::close(fds[1]);
  char ready = 0;
  REQUIRE(::read(fds[0], &ready, 1) == 1);
  ::close(fds[0]);
  REQUIRE(::kill(pid, SIGKILL) == 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));

  // The old file is untouched and loads; the killed writer's temporary is left, half written.
  CHECK(read_text(path) == old_bytes);
  std::unique_ptr<funnel::Model> model;
  CHECK(funnel::Model::load_file(path, &model).is_ok());
  const std::string leftover = "model.funnel.tmp-" + std::to_string(pid) + "-";
  std::vector<std::string> names = folder.names();
  REQUIRE(names.size() == 2);
  CHECK(names[1].rfind(leftover, 0) == 0);
  CHECK(fs::file_size(folder.file(names[1])) == new_bytes.size() / 2);

  // The next write does not trip over it: it picks its own name, and leaves the leftover as it found it.
  std::unique_ptr<funnel::Model> replacement;
  REQUIRE(funnel::Model::load_bytes(reinterpret_cast<const uint8_t*>(new_bytes.data()), new_bytes.size(), &replacement).is_ok());
  REQUIRE(replacement->save(path).is_ok());
  CHECK(read_text(path) == new_bytes);
  CHECK(folder.names() == names);
}
