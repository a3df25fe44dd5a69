#include "train/retrieval/cbns.hpp"

#include <algorithm>
#include <stdexcept>

namespace funnel::train {

MemoryBank::MemoryBank(size_t capacity, size_t dim)
    : capacity_(capacity), dim_(dim), embeddings_(capacity * dim), log_q_(capacity), items_(capacity) {}

void MemoryBank::enqueue(const float* embeddings, const float* log_q, const uint32_t* items, size_t count) {
  if (capacity_ == 0) return;
  const size_t skip = count > capacity_ ? count - capacity_ : 0;
  for (size_t i = skip; i < count; ++i) {
    std::copy(embeddings + i * dim_, embeddings + (i + 1) * dim_, embeddings_.begin() + static_cast<long>(head_ * dim_));
    log_q_[head_] = log_q[i];
    items_[head_] = items[i];
    head_ = (head_ + 1) % capacity_;
    size_ = std::min(size_ + 1, capacity_);
  }
}

NegativeBank MemoryBank::negatives(bool apply_logq, bool balanced_item_gradient) const {
  // Until the bank is full, the filled slots are 0 .. size-1 (writing starts at slot 0).
  return {embeddings_.data(), log_q_.data(), items_.data(), size_, apply_logq, balanced_item_gradient};
}

uint32_t MemoryBank::item_by_age(size_t age) const {
  if (age >= size_) throw std::out_of_range("memory bank: no entry of that age");
  const size_t oldest = size_ < capacity_ ? 0 : head_;
  return items_[(oldest + age) % capacity_];
}

void MemoryBank::register_state(TrainingState& training) {
  training.add(
      [this](Checkpoint& c) {
        c.floats["bank/embeddings"] = embeddings_;
        c.floats["bank/log_q"] = log_q_;
        c.integers["bank/items"] = items_;
        c.header["bank_head"] = head_;
        c.header["bank_size"] = size_;
      },
      [this](const Checkpoint& c) {
        restore({c.float_array("bank/embeddings"), c.float_array("bank/log_q"), c.integer_array("bank/items"),
                 c.header.at("bank_head").get<size_t>(), c.header.at("bank_size").get<size_t>()});
      });
}

void MemoryBank::restore(const State& state) {
  if (state.embeddings.size() != capacity_ * dim_ || state.items.size() != capacity_ || state.log_q.size() != capacity_ ||
      state.head >= std::max<size_t>(capacity_, 1) || state.size > capacity_)
    throw std::invalid_argument("memory bank state does not match its capacity and dimension");
  embeddings_ = state.embeddings;
  log_q_ = state.log_q;
  items_ = state.items;
  head_ = state.head;
  size_ = state.size;
}

}  // namespace funnel::train
