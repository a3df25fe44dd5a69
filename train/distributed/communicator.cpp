#include "train/distributed/communicator.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>

namespace funnel::train {

void Communicator::broadcast(std::string& text, int root) {
  uint64_t length = text.size();
  broadcast(length, root);
  text.resize(length);
  broadcast(std::span<char>(text.data(), text.size()), root);
}

void LocalCommunicator::allgatherv_bytes(std::span<const std::byte> bytes, std::vector<std::byte>& out, std::vector<int>& counts) {
  out.assign(bytes.begin(), bytes.end());
  counts.assign(1, static_cast<int>(bytes.size()));
}

void LocalCommunicator::alltoallv_bytes(std::span<const std::byte> send, const std::vector<int>& send_counts,
                                        std::vector<std::byte>& out, std::vector<int>& recv_counts) {
  if (send_counts.size() != 1 || static_cast<size_t>(send_counts[0]) != send.size())
    throw CommunicationError("rank 0: alltoallv: the send counts do not describe the send buffer");
  out.assign(send.begin(), send.end());
  recv_counts = send_counts;
}

void LocalCommunicator::alltoallv_known_bytes(std::span<const std::byte> send, const std::vector<int>& send_counts,
                                              std::vector<std::byte>& out, const std::vector<int>& recv_counts) {
  if (recv_counts.size() != 1 || recv_counts[0] != send_counts.at(0))
    throw CommunicationError("rank 0: alltoallv: the receive counts do not match what this rank sends itself");
  std::vector<int> counts;
  alltoallv_bytes(send, send_counts, out, counts);
}

void LocalCommunicator::abort(const std::string& message, int code) {
  std::fprintf(stderr, "rank 0: %s\n", message.c_str());
  std::fflush(stderr);
  std::_Exit(code);
}

Communicator& local_communicator() {
  static LocalCommunicator local;
  return local;
}

namespace {

// SLURM_NTASKS when it says more than one task: srun (or an sbatch allocation of several tasks) started this
// process as one of several, whether or not it set up PMI for MPI (`srun --mpi=pmix` does).
int slurm_tasks() {
  const char* tasks = std::getenv("SLURM_NTASKS");
  return tasks ? std::atoi(tasks) : 0;
}

// What mpirun (OpenMPI), PMIx launchers and srun (PMI, or SLURM_NTASKS > 1) put in a launched process's environment.
bool launched_by_mpi_launcher() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_SIZE") || slurm_tasks() > 1;
}

}  // namespace

#ifndef FUNNEL_MPI
bool built_with_mpi() { return false; }
void finalize_world() {}

Communicator& world() {
  static bool checked = false;
  if (!checked) {
    checked = true;
    // Each process would train alone on the whole data and write the same files: refuse instead.
    const char* named = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (!named) named = std::getenv("PMI_SIZE");
    const int size = std::max(named ? std::atoi(named) : 0, slurm_tasks());
    if (launched_by_mpi_launcher() && size > 1)
      throw CommunicationError("launched as one of " + std::to_string(size) +
                               " processes (mpirun or srun), but this funnel was built without MPI (FUNNEL_MPI=OFF or no OpenMPI found); "
                               "rebuild with libopenmpi-dev installed, or run it without mpirun");
  }
  return local_communicator();
}
#else
bool built_with_mpi() { return true; }
// Defined in mpi_communicator.cpp: the MPI world when launched by a launcher.
Communicator* mpi_world_if_launched(bool launched);
void mpi_finalize_world();
void finalize_world() { mpi_finalize_world(); }

Communicator& world() {
  static Communicator* const the_world = [] {
    Communicator* launched = mpi_world_if_launched(launched_by_mpi_launcher());
    // srun without PMI for MPI (no --mpi=pmix) starts N singletons: each would train alone on the whole data
    // and write the same --out. Refuse instead.
    if (launched && launched->size() == 1 && slurm_tasks() > 1)
      throw CommunicationError("SLURM_NTASKS is " + std::to_string(slurm_tasks()) +
                               " but MPI sees a world of 1 process: launch with `srun --mpi=pmix -n N funnel ...` "
                               "(or mpirun), or run one task");
    return launched;
  }();
  return the_world ? *the_world : local_communicator();
}
#endif

}  // namespace funnel::train
