// The checkpoints of a run: one file at `<checkpoint>` for one process; under mpirun a set of one file per
// rank, saved in two phases so a set is whole or absent, never two epochs:
//   1. every rank writes its file for epoch e, "<checkpoint>.rank<r>.e<e>" (atomic, TrainingState::save);
//   2. the ranks agree every write succeeded (one all-gather; a failure on rank r stops every rank: rank r
//      throws "cannot write checkpoint <file>: <cause>", which its abort prints as "rank r: ...", the others
//      "stopped: rank r: cannot write checkpoint <file>: <cause>"; every rank removes the epoch's file);
//   3. rank 0 writes the manifest "<checkpoint>.ranks" (atomic: {"epoch": e, "world_size": N});
//   4. each rank removes its files of other epochs.
// A rank that dies anywhere in between leaves the manifest naming a set whose files all exist. Resuming reads
// the manifest, then this rank's file of the epoch it names. Both trainers (two-tower, ranker) save and resume
// through here; the naming, the world-size refusal and the same-epoch check live only here.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "train/core/checkpoint.hpp"
#include "train/distributed/communicator.hpp"

namespace funnel::train {

class TrainingState;

// The manifest of a distributed set of checkpoints of `base`.
std::string rank_manifest_path(const std::string& base);
// The file rank `rank` writes for epoch `epoch` of `base` (distributed runs only).
std::string rank_checkpoint_path(const std::string& base, int rank, uint32_t epoch);

// Adds what ties a checkpoint to its rank when the run is distributed (world_size, rank); nothing on one
// process, so one-process checkpoints stay resumable as they were.
void add_rank_identity(nlohmann::json& identity, const Communicator& comm);

// Collective: saves `state` as epoch `epoch` of `base` (`base` itself on one process). Throws TrainingError
// on every rank when any rank's write failed. FUNNEL_FAIL_CHECKPOINT="<rank>:<epoch>" makes that rank's
// write of that epoch fail (for the tests, docs/distributed.md).
void save_rank_checkpoint(Communicator& comm, const TrainingState& state, const std::string& base, uint32_t epoch);

// This rank's checkpoint of `base` to resume from: `base` on one process, the file the manifest names under
// mpirun. A set written by another number of ranks (or by one process) is refused, naming the number that
// wrote it; a missing or unreadable rank file throws "rank r: <path>: <cause>".
Checkpoint load_rank_checkpoint(const Communicator& comm, const std::string& base);

// Collective: every rank's restored checkpoint holds epoch `epochs_done`, else a TrainingError naming both.
void require_same_epoch(Communicator& comm, uint32_t epochs_done, const std::string& base);

}  // namespace funnel::train
