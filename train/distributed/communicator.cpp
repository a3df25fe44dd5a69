#include "train/distributed/communicator.hpp"

#include <cstdio>
#include <cstdlib>
#include <numeric>

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

// What mpirun (OpenMPI), PMIx launchers and srun (PMI) put in a launched process's environment.
bool launched_by_mpi_launcher() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_SIZE");
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
    const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (!size) size = std::getenv("PMI_SIZE");
    if (launched_by_mpi_launcher() && size && std::atoi(size) > 1)
      throw CommunicationError(std::string("launched as one of ") + size +
                               " processes, but this funnel was built without MPI (FUNNEL_MPI=OFF or no OpenMPI found); "
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
  static Communicator* const the_world = mpi_world_if_launched(launched_by_mpi_launcher());
  return the_world ? *the_world : local_communicator();
}
#endif

}  // namespace funnel::train
