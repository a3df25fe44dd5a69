// libFuzzer target for the dataset reader (train/data/dataset.cpp, train/data/ctr_data.cpp): a dataset
// description and its files, read as `funnel train-ranker --data` reads them (load_ctr_dataset: the
// delimited, sequences and json_lists formats through load_dataset and the DIN protocol, or the DIEN/CAN
// files). Bad input must be a clean error (DataError, ConfigError), never a crash, a sanitizer report, a leak
// or a hang. Run by scripts/fuzz.sh; seeds and crashes in tests/data/fuzz-regressions/fuzz_dataset_reader/.
//
// An input is up to five parts separated by NUL bytes: the description (JSON), then the files
// "interactions.csv", "users.csv", "items.csv" and "extra.txt", written to a folder of this process that is
// the description's root. File names in the description may not leave that folder (no '/', no '..').
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "train/core/errors.hpp"
#include "train/data/ctr_data.hpp"

namespace {

namespace fs = std::filesystem;

const std::string& folder() {
  static const std::string path = [] {
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    const fs::path made = base / ("funnel-fuzz-reader-" + std::to_string(::getpid()));
    fs::create_directories(made);
    return made.string();
  }();
  // Removed when the fuzzer exits normally (a crash leaves it, with the input that caused it). Registered
  // after `path` is made, so it runs before `path` is destroyed.
  static const bool cleanup = std::atexit([] {
    std::error_code ignored;
    fs::remove_all(folder(), ignored);
  }) == 0;
  (void)cleanup;
  return path;
}

// Any string that could name a file outside the folder.
bool escapes(const nlohmann::json& value) {
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    return text.find('/') != std::string::npos || text.find("..") != std::string::npos;
  }
  if (value.is_structured())
    for (const auto& element : value) 
      if (escapes(element)) return true;
  return false;
}

void write(const std::string& name, std::string_view bytes) {
  std::ofstream(folder() + "/" + name, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  for (size_t start = 0; parts.size() < 5;) {
    const size_t end = input.find('\0', start);
    parts.push_back(input.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  const nlohmann::json description = nlohmann::json::parse(parts[0], nullptr, /*allow_exceptions=*/false);
  if (description.is_discarded() || escapes(description)) return 0;
  const char* names[] = {"interactions.csv", "users.csv", "items.csv", "extra.txt"};
  for (size_t i = 0; i < 4; ++i) write(names[i], i + 1 < parts.size() ? parts[i + 1] : std::string_view());
  write("dataset.json", parts[0]);
  funnel::train::CtrOptions options;
  options.max_history = 4;
  try {
    const funnel::train::CtrDataset read = funnel::train::load_ctr_dataset(folder() + "/dataset.json", folder(), options);
    (void)read;
  } catch (const funnel::train::DataError&) {
  } catch (const funnel::train::ConfigError&) {
  }
  return 0;
}
