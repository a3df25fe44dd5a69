// The processes of a distributed run and what they exchange: rank, size, all-reduce, all-gather,
// all-to-all, broadcast, barrier, abort. One interface, two implementations: MPI (built when FUNNEL_MPI is
// on, train/distributed/mpi_communicator.cpp) and a single process (always built; every operation is a
// copy). A build without MPI has no MPI header or library anywhere; world() is then the single process.
//
// Every call is collective: every rank of the communicator makes it, in the same order. A failed MPI call
// throws CommunicationError naming the rank and the call (MPI's errors return codes, MPI_ERRORS_RETURN).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace funnel::train {

class CommunicationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Whether other processes are in it (size() > 1).
  bool distributed() const { return size() > 1; }

  // In place: every rank ends with the element-wise sum over the ranks.
  virtual void allreduce_sum(std::span<float> values) = 0;
  virtual void allreduce_sum(std::span<double> values) = 0;
  // Every rank's `bytes` (any length per rank) concatenated in rank order; `counts` receives each rank's length.
  virtual void allgatherv_bytes(std::span<const std::byte> bytes, std::vector<std::byte>& out, std::vector<int>& counts) = 0;
  // Every rank's `bytes` concatenated in rank order on `root` only (out and counts untouched elsewhere).
  virtual void gatherv_bytes(std::span<const std::byte> bytes, std::vector<std::byte>& out, std::vector<int>& counts, int root) = 0;
  // send[send_counts[0]...] goes to rank 0, the next send_counts[1] bytes to rank 1, and so on; out receives what
  // every rank sent this one, in rank order, with recv_counts the length from each.
  virtual void alltoallv_bytes(std::span<const std::byte> send, const std::vector<int>& send_counts, std::vector<std::byte>& out,
                               std::vector<int>& recv_counts) = 0;
  // The same when every rank already knows what it receives from each (recv_counts, bytes): one MPI call
  // (MPI_Alltoallv) where alltoallv_bytes makes two (an MPI_Alltoall of the counts first).
  virtual void alltoallv_known_bytes(std::span<const std::byte> send, const std::vector<int>& send_counts, std::vector<std::byte>& out,
                                     const std::vector<int>& recv_counts) = 0;
  // `bytes` (the same length on every rank) takes root's contents.
  virtual void broadcast_bytes(std::span<std::byte> bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every process of the run: "rank r: <message>" on stderr, then the exit code (MPI_Abort).
  [[noreturn]] virtual void abort(const std::string& message, int code) = 0;
  // The collective MPI calls this communicator has made (each one a point where every rank waits for the
  // others; 0 for a single process, which makes none): what tests and benchmarks count per step.
  uint64_t collective_calls() const { return collective_calls_; }

  // Typed forms over the byte operations (trivially copyable T).
  template <typename T>
  std::vector<T> allgatherv(std::span<const T> values, std::vector<int>* counts = nullptr) {
    static_assert(std::is_trivially_copyable_v<T>, "the collectives copy T as bytes");
    std::vector<std::byte> out;
    std::vector<int> byte_counts;
    allgatherv_bytes(std::as_bytes(values), out, byte_counts);
    return from_bytes<T>(out, byte_counts, counts);
  }
  template <typename T>
  std::vector<T> gatherv(std::span<const T> values, int root, std::vector<int>* counts = nullptr) {
    static_assert(std::is_trivially_copyable_v<T>, "the collectives copy T as bytes");
    std::vector<std::byte> out;
    std::vector<int> byte_counts;
    gatherv_bytes(std::as_bytes(values), out, byte_counts, root);
    return from_bytes<T>(out, byte_counts, counts);
  }
  // send is grouped by destination rank, send_counts[r] elements to rank r.
  template <typename T>
  std::vector<T> alltoallv(std::span<const T> send, const std::vector<int>& send_counts, std::vector<int>* recv_counts = nullptr) {
    static_assert(std::is_trivially_copyable_v<T>, "the collectives copy T as bytes");
    std::vector<int> byte_counts(send_counts.size());
    for (size_t r = 0; r < send_counts.size(); ++r) byte_counts[r] = send_counts[r] * static_cast<int>(sizeof(T));
    std::vector<std::byte> out;
    std::vector<int> recv_bytes;
    alltoallv_bytes(std::as_bytes(send), byte_counts, out, recv_bytes);
    return from_bytes<T>(out, recv_bytes, recv_counts);
  }
  // send_counts[r] elements to rank r, recv_counts[r] elements expected from rank r (one MPI call).
  template <typename T>
  std::vector<T> alltoallv_known(std::span<const T> send, const std::vector<int>& send_counts, const std::vector<int>& recv_counts) {
    std::vector<int> send_bytes(send_counts.size()), recv_bytes(recv_counts.size());
    for (size_t r = 0; r < send_counts.size(); ++r) send_bytes[r] = send_counts[r] * static_cast<int>(sizeof(T));
    for (size_t r = 0; r < recv_counts.size(); ++r) recv_bytes[r] = recv_counts[r] * static_cast<int>(sizeof(T));
    std::vector<std::byte> out;
    alltoallv_known_bytes(std::as_bytes(send), send_bytes, out, recv_bytes);
    return from_bytes<T>(out, recv_bytes, nullptr);
  }
  template <typename T>
  void broadcast(std::span<T> values, int root) {
    static_assert(std::is_trivially_copyable_v<T>, "the collectives copy T as bytes");
    broadcast_bytes(std::as_writable_bytes(values), root);
  }
  template <typename T>
  void broadcast(T& value, int root) {
    broadcast(std::span<T>(&value, 1), root);
  }
  // A string (any length on root; the others receive it).
  void broadcast(std::string& text, int root);

 protected:
  uint64_t collective_calls_ = 0;

 private:
  template <typename T>
  static std::vector<T> from_bytes(const std::vector<std::byte>& bytes, const std::vector<int>& byte_counts, std::vector<int>* counts) {
    std::vector<T> out(bytes.size() / sizeof(T));
    if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
    if (counts) {
      counts->resize(byte_counts.size());
      for (size_t r = 0; r < byte_counts.size(); ++r) (*counts)[r] = byte_counts[r] / static_cast<int>(sizeof(T));
    }
    return out;
  }
};

// One process on its own: size 1, every operation a copy. Also what a test under mpirun uses to compute the
// one-process reference on a single rank.
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(std::span<float>) override {}
  void allreduce_sum(std::span<double>) override {}
  void allgatherv_bytes(std::span<const std::byte> bytes, std::vector<std::byte>& out, std::vector<int>& counts) override;
  void gatherv_bytes(std::span<const std::byte> bytes, std::vector<std::byte>& out, std::vector<int>& counts, int) override {
    allgatherv_bytes(bytes, out, counts);
  }
  void alltoallv_bytes(std::span<const std::byte> send, const std::vector<int>& send_counts, std::vector<std::byte>& out,
                       std::vector<int>& recv_counts) override;
  void alltoallv_known_bytes(std::span<const std::byte> send, const std::vector<int>& send_counts, std::vector<std::byte>& out,
                             const std::vector<int>& recv_counts) override;
  void broadcast_bytes(std::span<std::byte>, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(const std::string& message, int code) override;
};

// The process-wide communicator. Launched by mpirun or srun (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE in
// the environment) in a build with MPI, the first call initialises MPI and returns MPI_COMM_WORLD's
// communicator; otherwise the single process (a build without MPI launched by mpirun: every process trains
// alone, so it refuses when the environment says the world is larger than 1).
Communicator& world();
// A single-process communicator, also inside an MPI run (the one-rank reference in tests).
Communicator& local_communicator();
// Whether this build has MPI (FUNNEL_MPI).
bool built_with_mpi();
// Ends MPI when world() started it (MPI_Finalize); main calls it before returning. Harmless otherwise.
void finalize_world();

}  // namespace funnel::train
