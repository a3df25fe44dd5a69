#include "train/distributed/gradient_allreduce.hpp"

#include <algorithm>

namespace funnel::train {

GradientAllReduce::GradientAllReduce(Communicator& comm, std::vector<Parameter*> replicated)
    : comm_(comm), parameters_(std::move(replicated)) {}

void GradientAllReduce::reduce() {
  if (!comm_.distributed()) return;
  size_t total = 0;
  for (const Parameter* p : parameters_) total += p->grad.size();
  buffer_.resize(total);
  size_t at = 0;
  for (const Parameter* p : parameters_) {
    std::copy(p->grad.begin(), p->grad.end(), buffer_.begin() + static_cast<long>(at));
    at += p->grad.size();
  }
  comm_.allreduce_sum(buffer_);
  bytes_ += total * sizeof(float);
  at = 0;
  for (Parameter* p : parameters_) {
    std::copy_n(buffer_.begin() + static_cast<long>(at), p->grad.size(), p->grad.begin());
    at += p->grad.size();
    if (!p->sparse) continue;
    // The union of the touched rows, in the same order on every rank.
    std::vector<uint32_t> mine(p->touched);
    std::vector<uint32_t> all = comm_.allgatherv<uint32_t>(mine);
    std::sort(all.begin(), all.end());
    for (uint32_t row : p->touched) p->is_touched[row] = 0;
    p->touched.clear();
    for (size_t i = 0; i < all.size(); ++i)
      if (i == 0 || all[i] != all[i - 1]) p->touch(all[i]);
  }
}

}  // namespace funnel::train
