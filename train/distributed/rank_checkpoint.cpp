#include "train/distributed/rank_checkpoint.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "train/core/atomic_file.hpp"
#include "train/core/errors.hpp"
#include "train/core/training_state.hpp"

namespace funnel::train {

namespace {

// FUNNEL_FAIL_CHECKPOINT="<rank>:<epoch>": whether this rank's save of this epoch must fail (tests only).
bool injected_save_failure(int rank, uint32_t epoch) {
  const char* spec = std::getenv("FUNNEL_FAIL_CHECKPOINT");
  if (!spec) return false;
  char* end = nullptr;
  const long failing_rank = std::strtol(spec, &end, 10);
  return *end == ':' && failing_rank == rank && std::strtol(end + 1, nullptr, 10) == static_cast<long>(epoch);
}

// The manifest's contents; throws TrainingError naming the file when it is not one.
nlohmann::json read_manifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TrainingError(path + ": cannot open the checkpoints' manifest");
  std::stringstream text;
  text << in.rdbuf();
  try {
    nlohmann::json manifest = nlohmann::json::parse(text.str());
    manifest.at("epoch").get<uint32_t>();
    manifest.at("world_size").get<int>();
    return manifest;
  } catch (const nlohmann::json::exception& e) {
    throw TrainingError(path + ": not a checkpoints' manifest: " + e.what());
  }
}

std::string world_name(int ranks) { return ranks == 1 ? "one process" : "a run of " + std::to_string(ranks) + " ranks"; }

[[noreturn]] void refuse_world_size(const std::string& base, int written, int ranks) {
  throw TrainingError(base + ": the checkpoint was written by " + world_name(written) + " and this run has " +
                      (ranks == 1 ? "one" : std::to_string(ranks) + " ranks") + "; resume it with as many (" +
                      (written == 1 ? "without mpirun" : "mpirun -np " + std::to_string(written)) +
                      "): each rank's file holds its shard of the tables");
}

// Removes this rank's files of `base` from epochs other than `keep` ("<base>.rank<r>.e<k>").
void remove_other_generations(const std::string& base, int rank, uint32_t keep) {
  const std::filesystem::path path(base);
  const std::filesystem::path folder = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const std::string prefix = path.filename().string() + ".rank" + std::to_string(rank) + ".e";
  const std::string kept = std::filesystem::path(rank_checkpoint_path(base, rank, keep)).filename().string();
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || name == kept) continue;
    const std::string suffix = name.substr(prefix.size());
    if (suffix.empty() || suffix.find_first_not_of("0123456789") != std::string::npos) continue;  // temporaries, others
    std::filesystem::remove(entry.path(), error);  // a file left behind costs space, never correctness
  }
}

}  // namespace

std::string rank_manifest_path(const std::string& base) { return base + ".ranks"; }

std::string rank_checkpoint_path(const std::string& base, int rank, uint32_t epoch) {
  return base + ".rank" + std::to_string(rank) + ".e" + std::to_string(epoch);
}

void add_rank_identity(nlohmann::json& identity, const Communicator& comm) {
  if (!comm.distributed()) return;
  identity["world_size"] = comm.size();
  identity["rank"] = comm.rank();
}

void save_rank_checkpoint(Communicator& comm, const TrainingState& state, const std::string& base, uint32_t epoch) {
  if (!comm.distributed()) {
    state.save(base);
    return;
  }
  const int rank = comm.rank();
  const std::string file = rank_checkpoint_path(base, rank, epoch);
  std::string failure;  // this rank's, without its rank: the caller's abort prefixes "rank r: "
  try {
    if (injected_save_failure(rank, epoch)) throw TrainingError("injected failure (FUNNEL_FAIL_CHECKPOINT)");
    state.save(file);
  } catch (const std::exception& e) {
    failure = "cannot write checkpoint " + file + ": " + e.what();
  }
  // Phase 2: every rank learns whether every write succeeded; the first failure's message reaches all.
  const uint8_t failed = failure.empty() ? 0 : 1;
  const std::vector<uint8_t> failures = comm.allgatherv<uint8_t>(std::span<const uint8_t>(&failed, 1));
  for (size_t r = 0; r < failures.size(); ++r) {
    if (!failures[r]) continue;
    std::error_code ignored;
    std::filesystem::remove(file, ignored);  // the set of this epoch is not whole: the manifest keeps the last
    const bool mine = !failure.empty() && static_cast<int>(r) == rank;
    comm.broadcast(failure, static_cast<int>(r));
    // No rank throws (and its abort ends the others) before every rank has removed its file of this set: the
    // failing rank's broadcast returns at once, and its abort could otherwise kill a rank before its remove.
    comm.barrier();
    throw TrainingError(mine ? failure : "stopped: rank " + std::to_string(r) + ": " + failure);
  }
  // Phase 3: rank 0 names the set; the others learn whether it could.
  std::string manifest_failure;
  if (rank == 0) {
    try {
      const nlohmann::json manifest = {{"epoch", epoch}, {"world_size", comm.size()}};
      write_file_atomically(rank_manifest_path(base), manifest.dump() + "\n");
    } catch (const std::exception& e) {
      manifest_failure = "cannot write checkpoint " + rank_manifest_path(base) + ": " + e.what();
    }
  }
  comm.broadcast(manifest_failure, 0);
  if (!manifest_failure.empty()) throw TrainingError(rank == 0 ? manifest_failure : "stopped: rank 0: " + manifest_failure);
  // Phase 4: the manifest names epoch `epoch`; the older files are no longer needed.
  remove_other_generations(base, rank, epoch);
}

Checkpoint load_rank_checkpoint(const Communicator& comm, const std::string& base) {
  const int ranks = comm.size();
  const std::string manifest_path = rank_manifest_path(base);
  if (!comm.distributed()) {
    // One process reads `base`; a set of rank files there is refused, naming how many ranks wrote it.
    if (!std::filesystem::exists(base) && std::filesystem::exists(manifest_path))
      refuse_world_size(base, read_manifest(manifest_path).at("world_size").get<int>(), ranks);
    Checkpoint checkpoint = load_checkpoint(base);
    const int written = checkpoint.header.value("identity", nlohmann::json::object()).value("world_size", 1);
    if (written != 1) refuse_world_size(base, written, ranks);
    return checkpoint;
  }
  if (!std::filesystem::exists(manifest_path)) {
    if (std::filesystem::exists(base)) refuse_world_size(base, 1, ranks);  // one process's checkpoint
    throw TrainingError(base + ": no such checkpoint (" + manifest_path + " is absent)");
  }
  const nlohmann::json manifest = read_manifest(manifest_path);
  const int written = manifest.at("world_size").get<int>();
  if (written != ranks) refuse_world_size(base, written, ranks);
  // The caller's abort names the rank ("rank r: <path>: <cause>"); load_checkpoint's messages start with the path.
  return load_checkpoint(rank_checkpoint_path(base, comm.rank(), manifest.at("epoch").get<uint32_t>()));
}

void require_same_epoch(Communicator& comm, uint32_t epochs_done, const std::string& base) {
  if (!comm.distributed()) return;
  const std::vector<uint32_t> all = comm.allgatherv<uint32_t>(std::span<const uint32_t>(&epochs_done, 1));
  for (size_t r = 0; r < all.size(); ++r)
    if (all[r] != all[0])
      throw TrainingError(base + ": the ranks' checkpoints are from different epochs (rank 0: epoch " + std::to_string(all[0]) + ", rank " +
                          std::to_string(r) + ": epoch " + std::to_string(all[r]) + "); resume from a set written by one epoch");
}

}  // namespace funnel::train
