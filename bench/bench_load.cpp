// Model load: Model::load_file (open, mmap read-only, FlatBuffers verification, the semantic checks) on
// two-tower files of about 10 MB and 500 MB, and a third file as large as the second but with the first's
// item count (a wider catalogue), which separates what load time depends on: tensor bytes or item count.
//
// The files are exported by the trainer (export_two_tower) from the built-in synthetic dataset, untrained
// (initial weights; load time does not depend on the values), and cached in /tmp/funnel-bench-load until
// funnel_bench is rebuilt: the 500 MB one takes about half a minute to build. The catalogue (items x output_dim f32) dominates their size.
//
// The page cache is warm: each file is read once with read() before it is timed, so the figures are the
// SDK's work, not the disk's. Each load's mapping is dropped outside the timed region. The counters:
//   file_bytes, tensor_bytes, items: the file;
//   minor_faults: page faults per load; pages touched = faults x up to 16 (the kernel maps up to 64 KB
//   around a fault of a cached file), so faults x 64 KB is an upper bound on the bytes the load read.
//   build/release/bench/funnel_bench --benchmark_filter=LoadFile --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "train/data/dataset.hpp"
#include "train/core/atomic_file.hpp"
#include "train/export/export.hpp"
#include "funnel/funnel.hpp"
#include "train/data/synthetic.hpp"
#include "train/retrieval/two_tower.hpp"

namespace {

const std::string kDirectory = "/tmp/funnel-bench-load";

bool loads(const std::string& path) {
  std::unique_ptr<funnel::Model> model;
  return funnel::Model::load_file(path, &model).ok() && model->catalogue_size() > 0;
}

// The path of a two-tower file whose catalogue holds `items` rows of `output_dim` floats, built on the first
// call, and again when this program was rebuilt after it (the exporter may have changed) or it no longer loads.
std::string model_file(uint32_t items, uint32_t output_dim) {
  namespace fs = std::filesystem;
  const std::string path = kDirectory + "/items" + std::to_string(items) + "-dim" + std::to_string(output_dim) + ".funnel";
  std::error_code error;
  const auto program = fs::last_write_time("/proc/self/exe", error);
  if (fs::exists(path) && !error && fs::last_write_time(path) > program && loads(path)) return path;
  funnel::train::SyntheticOptions options;
  options.items = items;
  options.users = 10;  // the generator's cost grows with users x items; the file's size barely depends on users
  options.mean_interactions = 5;
  const std::string data_dir = kDirectory + "/data-" + std::to_string(items);
  const auto data = funnel::train::load_dataset(funnel::train::write_synthetic_dataset(data_dir, options));
  funnel::train::TrainConfig config;
  config.output_dim = output_dim;
  const funnel::train::TwoTowerModel model(data, config);
  funnel::train::write_file_atomically(path, funnel::train::export_two_tower(data, model, config, {}));
  std::filesystem::remove_all(data_dir);
  return path;
}

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// The resident bytes of this process's mapping of `path` (/proc/self/smaps "Rss"): the pages the load made
// present, which bounds what it read of the file (pages are mapped on access, with some read-around).
double mapped_bytes(const std::string& path) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in_mapping = false;
  double total = 0;
  while (std::getline(smaps, line)) {
    const std::string first = line.substr(0, line.find(' '));
    if (first.find('-') != std::string::npos && first.find(':') == std::string::npos) {  // a mapping's header line
      in_mapping = line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0;
      continue;
    }
    if (in_mapping && line.rfind("Rss:", 0) == 0) total += std::stod(line.substr(4)) * 1024;
  }
  return total;
}

void BM_LoadFile(benchmark::State& state, uint32_t items, uint32_t output_dim) {
  const std::string path = model_file(items, output_dim);
  {
    // Warm the page cache.
    std::ifstream in(path, std::ios::binary);
    std::vector<char> chunk(1 << 20);
    while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
    }
  }
  std::unique_ptr<funnel::Model> model;
  long faults = 0;
  for (auto _ : state) {
    const long before = minor_faults();
    if (!funnel::Model::load_file(path, &model)) state.SkipWithError("model does not load");
    faults += minor_faults() - before;
    benchmark::DoNotOptimize(model.get());
    state.PauseTiming();
    model.reset();
    state.ResumeTiming();
  }
  if (!funnel::Model::load_file(path, &model)) return state.SkipWithError("model does not load");
  state.counters["mapped_bytes"] = mapped_bytes(path);
  size_t tensor_bytes = 0;
  for (size_t t = 0; t < model->tensor_count(); ++t) tensor_bytes += model->tensor_info(t).bytes;
  state.counters["file_bytes"] = static_cast<double>(model->byte_size());
  state.counters["tensor_bytes"] = static_cast<double>(tensor_bytes);
  state.counters["items"] = static_cast<double>(model->catalogue_size());
  state.counters["dim"] = static_cast<double>(model->embedding_dim());
  state.counters["minor_faults"] = static_cast<double>(faults) / static_cast<double>(state.iterations());
  state.SetLabel("warm page cache");
}
// About 363 bytes per item at 64 dims: the catalogue row (256), the item-id embedding (64), the key twice (the
// catalogue's and the item-id vocabulary's) with their ends and sorted orders. 10 MB: 27,500 items x 64 dims; 500 MB:
// 1,375,000 items x 64 dims; and 500 MB again from 27,500 items x 4,500 dims.
BENCHMARK_CAPTURE(BM_LoadFile, 10MB, 27'500u, 64u)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LoadFile, 500MB, 1'375'000u, 64u)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_LoadFile, 500MB_wide, 27'500u, 4'500u)->Unit(benchmark::kMillisecond)->UseRealTime();

// Model::verify: the checks load leaves out, run on demand (the CLI's commands before they answer, `funnel
// inspect`), on the 500 MB file of 1,375,000 items: every checksum (each tensor, each key table, the item
// table: XXH3 over the tensors and tables; then the whole file, a second pass), every key table sorted and
// distinct. The page cache is warm (the file was read by the load benchmarks before, and by the first
// iteration). The name stays from when it checked only the keys (bench/sdk_table.py reads it).
void BM_VerifyKeys(benchmark::State& state) {
  std::unique_ptr<funnel::Model> model;
  if (!funnel::Model::load_file(model_file(1'375'000u, 64u), &model)) return state.SkipWithError("model does not load");
  if (!model->has_checksums()) return state.SkipWithError("the file carries no checksums");
  for (auto _ : state)
    if (!model->verify()) state.SkipWithError("the file fails verify()");
  state.counters["items"] = static_cast<double>(model->catalogue_size());
  state.counters["file_bytes"] = static_cast<double>(model->byte_size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(model->byte_size()));
}
BENCHMARK(BM_VerifyKeys)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
