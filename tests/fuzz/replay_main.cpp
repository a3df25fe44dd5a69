// Replays a fuzz target's regression files without libFuzzer: every file in the folders given goes
// through the target's LLVMFuzzerTestOneInput, as `fuzz_<target> <folder>` does under the clang `fuzz`
// preset. Linked with fuzz_dataset_reader.cpp and fuzz_request_json.cpp into the release build's ctests
// "fuzz_regressions_*" (tests/CMakeLists.txt), so their regressions are replayed by every build. A target
// reports a bad outcome by aborting; an empty folder fails (nothing replayed proves nothing).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  std::vector<std::filesystem::path> files;
  for (int a = 1; a < argc; ++a)
    for (const auto& entry : std::filesystem::directory_iterator(argv[a]))
      if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::printf("replaying %s (%zu bytes)\n", file.string().c_str(), bytes.size());
    std::fflush(stdout);
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  }
  std::printf("%zu regression files replayed\n", files.size());
  return files.empty() ? 1 : 0;
}
