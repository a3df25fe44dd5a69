#include "train/distributed/gradient_allreduce.hpp"

#include <algorithm>

namespace funnel::train {

size_t allreduce_touched_gradients(Communicator& comm, std::span<Parameter* const> dense, std::span<Parameter* const> tables,
                                   std::span<float> extra, std::vector<float>& buffer) {
  // The rows any rank touched, per table, the same sorted list everywhere.
  std::vector<std::vector<uint32_t>> rows(tables.size());
  size_t total = extra.size();
  for (const Parameter* p : dense) total += p->grad.size();
  for (size_t t = 0; t < tables.size(); ++t) {
    const Parameter& table = *tables[t];
    rows[t] = comm.allgatherv<uint32_t>(table.touched);
    std::sort(rows[t].begin(), rows[t].end());
    rows[t].erase(std::unique(rows[t].begin(), rows[t].end()), rows[t].end());
    total += rows[t].size() * table.row_size;
  }
  buffer.resize(total);
  auto at = buffer.begin();
  for (const Parameter* p : dense) at = std::copy(p->grad.begin(), p->grad.end(), at);
  for (size_t t = 0; t < tables.size(); ++t)
    for (uint32_t row : rows[t]) at = std::copy_n(tables[t]->grad.begin() + static_cast<long>(size_t{row} * tables[t]->row_size), tables[t]->row_size, at);
  std::copy(extra.begin(), extra.end(), at);
  comm.allreduce_sum(buffer);
  auto from = buffer.cbegin();
  for (Parameter* p : dense) {
    std::copy_n(from, p->grad.size(), p->grad.begin());
    from += static_cast<long>(p->grad.size());
  }
  for (size_t t = 0; t < tables.size(); ++t) {
    Parameter& table = *tables[t];
    // The union, in its sorted order, on every rank.
    for (uint32_t row : table.touched) table.is_touched[row] = 0;
    table.touched.clear();
    for (uint32_t row : rows[t]) {
      std::copy_n(from, table.row_size, table.grad.begin() + static_cast<long>(size_t{row} * table.row_size));
      from += static_cast<long>(table.row_size);
      table.touch(row);  // so that the optimiser steps a row another rank touched too
    }
  }
  std::copy_n(from, extra.size(), extra.begin());
  return total;
}

GradientAllReduce::GradientAllReduce(Communicator& comm, std::vector<Parameter*> replicated) : comm_(comm) {
  for (Parameter* p : replicated) (p->sparse ? tables_ : dense_).push_back(p);
}

void GradientAllReduce::reduce() {
  if (!comm_.distributed()) return;
  bytes_ += allreduce_touched_gradients(comm_, dense_, tables_, {}, buffer_) * sizeof(float);
}

}  // namespace funnel::train
