// The communicator's operations and the sharded table's row exchange, on world() (2 ranks under mpirun, 1
// alone) and on the single-process communicator.
#include <catch2/catch.hpp>

#include <memory>
#include <numeric>

#include "train/distributed/communicator.hpp"
#include "train/distributed/sharded_table.hpp"

using namespace funnel::train;

namespace {

// A full table every rank can compute: row r, column k holds r * 100 + k.
std::vector<float> full_table(uint32_t rows, size_t dim) {
  std::vector<float> t(rows * dim);
  for (uint32_t r = 0; r < rows; ++r)
    for (size_t k = 0; k < dim; ++k) t[r * dim + k] = static_cast<float>(r * 100 + k);
  return t;
}

void check_collectives(Communicator& comm) {
  const int rank = comm.rank(), size = comm.size();
  std::vector<float> f = {1.0f + rank, 2.0f};
  comm.allreduce_sum(f);
  CHECK(f[0] == Approx(size + size * (size - 1) / 2.0));
  CHECK(f[1] == 2.0f * size);
  std::vector<double> d = {0.5 * rank};
  comm.allreduce_sum(d);
  CHECK(d[0] == Approx(0.25 * size * (size - 1)));

  // Rank r contributes r + 1 values r.
  std::vector<uint32_t> mine(static_cast<size_t>(rank + 1), static_cast<uint32_t>(rank));
  std::vector<int> counts;
  const std::vector<uint32_t> all = comm.allgatherv<uint32_t>(mine, &counts);
  REQUIRE(counts.size() == static_cast<size_t>(size));
  size_t at = 0;
  for (int r = 0; r < size; ++r) {
    CHECK(counts[static_cast<size_t>(r)] == r + 1);
    for (int i = 0; i <= r; ++i) CHECK(all.at(at++) == static_cast<uint32_t>(r));
  }
  CHECK(at == all.size());

  const std::vector<uint32_t> gathered = comm.gatherv<uint32_t>(mine, 0, &counts);
  if (rank == 0) CHECK(gathered == all);

  // Rank r sends (r, to) twice to every rank `to`.
  std::vector<float> send;
  std::vector<int> send_counts;
  for (int to = 0; to < size; ++to) {
    send.insert(send.end(), {static_cast<float>(rank * 10 + to), static_cast<float>(rank * 10 + to)});
    send_counts.push_back(2);
  }
  std::vector<int> recv_counts;
  const std::vector<float> got = comm.alltoallv<float>(send, send_counts, &recv_counts);
  REQUIRE(got.size() == static_cast<size_t>(2 * size));
  for (int from = 0; from < size; ++from) {
    CHECK(recv_counts[static_cast<size_t>(from)] == 2);
    CHECK(got[static_cast<size_t>(2 * from)] == static_cast<float>(from * 10 + rank));
  }

  std::string text = rank == 0 ? "from the root" : "";
  comm.broadcast(text, 0);
  CHECK(text == "from the root");
  comm.barrier();
}

}  // namespace

TEST_CASE("Communicator: all-reduce, all-gather, gather, all-to-all, broadcast", "[distributed]") {
  check_collectives(world());
  check_collectives(local_communicator());
  CHECK(local_communicator().size() == 1);
}

TEST_CASE("ShardedTable: owners partition the rows; fetch, push and gather move the right rows", "[distributed]") {
  Communicator& comm = world();
  const uint32_t rows = 50;
  const size_t dim = 3;
  const std::vector<float> full = full_table(rows, dim);
  ShardedTable table(comm, "t", rows, dim);
  table.take_owned_rows(full.data());

  // Every row has exactly one owner.
  std::vector<uint32_t> owned(table.owned());
  std::vector<float> count(rows, 0.0f);
  for (uint32_t r : owned) count[r] += 1.0f;
  comm.allreduce_sum(count);
  for (float c : count) CHECK(c == 1.0f);

  // Rank r reads rows r, r+2, r+4, ... (and every rank reads row 7): they arrive in the cache.
  std::vector<uint32_t> want = {7};
  for (uint32_t row = static_cast<uint32_t>(comm.rank()); row < rows; row += 2)
    if (row != 7) want.push_back(row);
  table.fetch(want);
  REQUIRE(table.cache().value.size() == want.size() * dim);
  for (uint32_t row : want)
    for (size_t k = 0; k < dim; ++k) CHECK(table.cache().value[table.slots()[row] * dim + k] == full[row * dim + k]);

  // Every rank pushes gradient 1 on each row it read: owners sum over the readers.
  for (uint32_t row : want) {
    for (size_t k = 0; k < dim; ++k) table.cache().grad[table.slots()[row] * dim + k] = 1.0f;
  }
  table.push_gradients();
  std::vector<float> readers(rows, 0.0f);
  for (uint32_t row : want) readers[row] += 1.0f;
  comm.allreduce_sum(readers);
  for (size_t i = 0; i < table.owned().size(); ++i) {
    CHECK(table.shard().grad[i * dim] == readers[table.owned()[i]]);
    CHECK(static_cast<bool>(table.shard().is_touched[i]) == (readers[table.owned()[i]] > 0));
  }

  // Bytes follow the model: 4 B per remote rank (the table's id count), 4 B per remote id, dim floats per
  // remote row each way.
  uint64_t remote = 0;
  for (uint32_t row : want) remote += ShardedTable::owner(row, comm.size()) != comm.rank();
  // The rows this rank served: those the other ranks read and this one owns.
  uint64_t served = 0;
  for (int other = 0; other < comm.size(); ++other) {
    if (other == comm.rank()) continue;
    std::vector<uint32_t> theirs = {7};
    for (uint32_t row = static_cast<uint32_t>(other); row < rows; row += 2)
      if (row != 7) theirs.push_back(row);
    for (uint32_t row : theirs) served += ShardedTable::owner(row, comm.size()) == comm.rank();
  }
  CHECK(table.bytes_sent() == (comm.size() - 1) * 4u + remote * 4 + served * dim * 4 + remote * dim * 4);
  CHECK(table.exchanges() == 1);

  const std::vector<float> gathered = table.gather(0);
  if (comm.rank() == 0)
    CHECK(gathered == full);
  else
    CHECK(gathered.empty());
}

// The gather for export goes in rounds of bounded row ranges (MPI's int counts cap one call at 2 GiB): with
// chunks of 7, 1 or more rows than the table has, several rounds or one, the same table on the root, and one
// gather call per round.
TEST_CASE("ShardedTable: the gather in bounded chunks gives the whole table", "[distributed]") {
  Communicator& comm = world();
  const uint32_t rows = 50;
  const size_t dim = 3;
  const std::vector<float> full = full_table(rows, dim);
  ShardedTable table(comm, "t", rows, dim);
  table.take_owned_rows(full.data());
  for (const auto& [chunk, rounds] : {std::pair<size_t, uint64_t>{7, 8}, {1, 50}, {64, 1}, {0, 1}}) {
    INFO("chunk of " << chunk << " rows");
    const uint64_t before = comm.collective_calls();
    const std::vector<float> gathered = table.gather(0, chunk);
    if (comm.distributed()) CHECK((comm.collective_calls() - before) % rounds == 0);
    if (comm.distributed()) CHECK(comm.collective_calls() - before >= rounds);
    if (comm.rank() == 0)
      CHECK(gathered == full);
    else
      CHECK(gathered.empty());
  }
}

// Several tables in one RowExchange: each table's cache, owners' gradient sums and bytes are what its own
// exchange gives, and the whole step makes 4 collective MPI calls (ids' counts, ids, values, gradients)
// whatever the number of tables; one table fetched alone makes as many.
TEST_CASE("RowExchange: every table in one exchange per phase, 4 collective calls a step", "[distributed][two_ranks]") {
  Communicator& comm = world();
  if (comm.size() != 2) {
    WARN("needs mpirun -np 2 (ctest's distributed_2_ranks runs it)");
    return;
  }
  const std::vector<std::pair<uint32_t, size_t>> shapes = {{19, 3}, {7, 5}, {30, 2}};
  std::vector<std::unique_ptr<ShardedTable>> fused, alone;
  std::vector<std::vector<float>> fulls;
  std::vector<std::vector<uint32_t>> wants;
  for (size_t t = 0; t < shapes.size(); ++t) {
    const auto [rows, dim] = shapes[t];
    fulls.push_back(full_table(rows, dim));
    for (auto* group : {&fused, &alone}) {
      group->push_back(std::make_unique<ShardedTable>(comm, std::string("table ").append(std::to_string(t)), rows, dim));
      group->back()->take_owned_rows(fulls.back().data());
    }
    // Rank r reads every (r + t + 2)-th row from r, and table 1 nothing on rank 1.
    std::vector<uint32_t> want;
    if (!(t == 1 && comm.rank() == 1))
      for (uint32_t row = static_cast<uint32_t>(comm.rank()); row < rows; row += static_cast<uint32_t>(comm.rank() + t + 2)) want.push_back(row);
    wants.push_back(want);
  }
  RowExchange exchange(comm);
  const uint64_t before = comm.collective_calls();
  for (size_t t = 0; t < shapes.size(); ++t) exchange.add(*fused[t], wants[t]);
  exchange.fetch();
  for (size_t t = 0; t < shapes.size(); ++t) {
    const size_t dim = shapes[t].second;
    REQUIRE(fused[t]->cache().value.size() == wants[t].size() * dim);
    for (uint32_t row : wants[t])
      for (size_t k = 0; k < dim; ++k) CHECK(fused[t]->cache().value[fused[t]->slots()[row] * dim + k] == fulls[t][row * dim + k]);
    for (size_t i = 0; i < fused[t]->cache().grad.size(); ++i) fused[t]->cache().grad[i] = 0.25f * static_cast<float>(i % 7 + t);
  }
  exchange.push_gradients();
  CHECK(comm.collective_calls() - before == 4);

  for (size_t t = 0; t < shapes.size(); ++t) {
    const uint64_t one = comm.collective_calls();
    alone[t]->fetch(wants[t]);
    for (size_t i = 0; i < alone[t]->cache().grad.size(); ++i) alone[t]->cache().grad[i] = 0.25f * static_cast<float>(i % 7 + t);
    alone[t]->push_gradients();
    CHECK(comm.collective_calls() - one == 4);
    CHECK(fused[t]->cache().value == alone[t]->cache().value);
    CHECK(fused[t]->shard().grad == alone[t]->shard().grad);
    CHECK(fused[t]->shard().is_touched == alone[t]->shard().is_touched);
    CHECK(fused[t]->bytes_sent() == alone[t]->bytes_sent());
    CHECK(fused[t]->exchanges() == 1);
  }
}
