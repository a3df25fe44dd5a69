// The MPI implementation of Communicator (compiled only with FUNNEL_MPI). Errors return codes
// (MPI_ERRORS_RETURN) and every code becomes a CommunicationError naming the rank and the call.
#include <mpi.h>

#include <climits>
#include <cstdio>
#include <memory>
#include <numeric>

#include "train/distributed/communicator.hpp"

namespace funnel::train {

namespace {

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce_sum(std::span<float> values) override { allreduce(values.data(), values.size(), MPI_FLOAT); }
  void allreduce_sum(std::span<double> values) override { allreduce(values.data(), values.size(), MPI_DOUBLE); }

  void allgatherv_bytes(std::span<const std::byte> bytes, std::vector<std::byte>& out, std::vector<int>& counts) override {
    const int mine = count_of(bytes.size(), "MPI_Allgatherv");
    counts.assign(static_cast<size_t>(size_), 0);
    collective(MPI_Allgather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_), "MPI_Allgather");
    const std::vector<int> displacements = offsets(counts, "MPI_Allgatherv");
    out.resize(static_cast<size_t>(displacements.back() + counts.back()));
    collective(MPI_Allgatherv(bytes.data(), mine, MPI_BYTE, out.data(), counts.data(), displacements.data(), MPI_BYTE, comm_),
          "MPI_Allgatherv");
  }

  void gatherv_bytes(std::span<const std::byte> bytes, std::vector<std::byte>& out, std::vector<int>& counts, int root) override {
    const int mine = count_of(bytes.size(), "MPI_Gatherv");
    std::vector<int> all(static_cast<size_t>(size_), 0);
    collective(MPI_Gather(&mine, 1, MPI_INT, all.data(), 1, MPI_INT, root, comm_), "MPI_Gather");
    std::vector<int> displacements(static_cast<size_t>(size_), 0);
    std::vector<std::byte> received;
    if (rank_ == root) {
      displacements = offsets(all, "MPI_Gatherv");
      received.resize(static_cast<size_t>(displacements.back() + all.back()));
    }
    collective(MPI_Gatherv(bytes.data(), mine, MPI_BYTE, received.data(), all.data(), displacements.data(), MPI_BYTE, root, comm_),
          "MPI_Gatherv");
    if (rank_ == root) {
      out = std::move(received);
      counts = std::move(all);
    }
  }

  void alltoallv_bytes(std::span<const std::byte> send, const std::vector<int>& send_counts, std::vector<std::byte>& out,
                       std::vector<int>& recv_counts) override {
    if (send_counts.size() != static_cast<size_t>(size_))
      throw CommunicationError(where("MPI_Alltoallv") + ": " + std::to_string(send_counts.size()) + " send counts for " +
                               std::to_string(size_) + " ranks");
    const std::vector<int> send_displacements = offsets(send_counts, "MPI_Alltoallv");
    if (static_cast<size_t>(send_displacements.back() + send_counts.back()) != send.size())
      throw CommunicationError(where("MPI_Alltoallv") + ": the send counts do not describe the send buffer");
    recv_counts.assign(static_cast<size_t>(size_), 0);
    collective(MPI_Alltoall(send_counts.data(), 1, MPI_INT, recv_counts.data(), 1, MPI_INT, comm_), "MPI_Alltoall");
    const std::vector<int> recv_displacements = offsets(recv_counts, "MPI_Alltoallv");
    out.resize(static_cast<size_t>(recv_displacements.back() + recv_counts.back()));
    collective(MPI_Alltoallv(send.data(), send_counts.data(), send_displacements.data(), MPI_BYTE, out.data(), recv_counts.data(),
                        recv_displacements.data(), MPI_BYTE, comm_),
          "MPI_Alltoallv");
  }

  void alltoallv_known_bytes(std::span<const std::byte> send, const std::vector<int>& send_counts, std::vector<std::byte>& out,
                             const std::vector<int>& recv_counts) override {
    if (send_counts.size() != static_cast<size_t>(size_) || recv_counts.size() != static_cast<size_t>(size_))
      throw CommunicationError(where("MPI_Alltoallv") + ": counts for " + std::to_string(send_counts.size()) + " and " +
                               std::to_string(recv_counts.size()) + " ranks in a world of " + std::to_string(size_));
    const std::vector<int> send_displacements = offsets(send_counts, "MPI_Alltoallv");
    if (static_cast<size_t>(send_displacements.back() + send_counts.back()) != send.size())
      throw CommunicationError(where("MPI_Alltoallv") + ": the send counts do not describe the send buffer");
    const std::vector<int> recv_displacements = offsets(recv_counts, "MPI_Alltoallv");
    out.resize(static_cast<size_t>(recv_displacements.back() + recv_counts.back()));
    collective(MPI_Alltoallv(send.data(), send_counts.data(), send_displacements.data(), MPI_BYTE, out.data(), recv_counts.data(),
                             recv_displacements.data(), MPI_BYTE, comm_),
               "MPI_Alltoallv");
  }

  void broadcast_bytes(std::span<std::byte> bytes, int root) override {
    // In pieces below INT_MAX bytes: MPI's counts are ints.
    for (size_t done = 0; done < bytes.size();) {
      const size_t piece = std::min<size_t>(bytes.size() - done, static_cast<size_t>(INT_MAX));
      collective(MPI_Bcast(bytes.data() + done, static_cast<int>(piece), MPI_BYTE, root, comm_), "MPI_Bcast");
      done += piece;
    }
  }
  void barrier() override { collective(MPI_Barrier(comm_), "MPI_Barrier"); }

  void abort(const std::string& message, int code) override {
    std::fprintf(stderr, "rank %d: %s\n", rank_, message.c_str());
    std::fflush(stderr);
    MPI_Abort(comm_, code);
    std::_Exit(code);  // MPI_Abort does not return; should it, this process still ends
  }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;

  std::string where(const char* call) const { return "rank " + std::to_string(rank_) + ": " + call; }
  // A collective call: counted, then checked.
  void collective(int code, const char* call) {
    ++collective_calls_;
    check(code, call);
  }
  void check(int code, const char* call) const {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw CommunicationError(where(call) + " failed: " + std::string(text, static_cast<size_t>(length)));
  }
  int count_of(size_t n, const char* call) const {
    if (n > static_cast<size_t>(INT_MAX)) throw CommunicationError(where(call) + ": more than INT_MAX bytes in one message");
    return static_cast<int>(n);
  }
  std::vector<int> offsets(const std::vector<int>& counts, const char* call) const {
    std::vector<int> out(counts.size(), 0);
    long long total = 0;
    for (size_t r = 0; r < counts.size(); ++r) {
      out[r] = static_cast<int>(total);
      total += counts[r];
    }
    if (total > INT_MAX) throw CommunicationError(where(call) + ": more than INT_MAX bytes in one exchange");
    return out;
  }
  void allreduce(void* values, size_t n, MPI_Datatype type) {
    const size_t element = type == MPI_FLOAT ? sizeof(float) : sizeof(double);
    for (size_t done = 0; done < n;) {
      const size_t piece = std::min<size_t>(n - done, static_cast<size_t>(INT_MAX));
      collective(MPI_Allreduce(MPI_IN_PLACE, static_cast<char*>(values) + done * element, static_cast<int>(piece), type, MPI_SUM, comm_),
            "MPI_Allreduce");
      done += piece;
    }
  }
};

bool started_mpi = false;

}  // namespace

Communicator* mpi_world_if_launched(bool launched) {
  if (!launched) return nullptr;
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    // Only the thread that called world() makes MPI calls; OpenMP threads compute between them.
    int provided = 0;
    const int status = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    if (status != MPI_SUCCESS) {
      char text[MPI_MAX_ERROR_STRING] = {};
      int length = 0;
      MPI_Error_string(status, text, &length);
      throw CommunicationError("MPI_Init_thread failed: " + std::string(text, static_cast<size_t>(length)));
    }
    started_mpi = true;
    if (provided < MPI_THREAD_FUNNELED)
      throw CommunicationError("MPI_Init_thread provided thread level " + std::to_string(provided) +
                               ", below MPI_THREAD_FUNNELED (" + std::to_string(MPI_THREAD_FUNNELED) +
                               "): this MPI cannot be used from a multi-threaded (OpenMP) process");
  }
  static MpiCommunicator world(MPI_COMM_WORLD);
  return &world;
}

void mpi_finalize_world() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (started_mpi && !finalized) MPI_Finalize();
}

}  // namespace funnel::train
