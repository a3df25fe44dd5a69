#include "train/core/adam.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace funnel::train {

namespace {

// One element's update; the dense step, the deferred catch-up (with g = 0) and the lazy step all run
// this same expression, which is what makes deferred Adam bit-identical to dense Adam.
inline void update(float g, float b1, float b2, float eps, float step_size, float inv_sqrt_c2, float& m, float& v, float& value) {
  m = b1 * m + (1.0f - b1) * g;
  v = b2 * v + (1.0f - b2) * g * g;
  value -= step_size * m / (std::sqrt(v) * inv_sqrt_c2 + eps);
}

}  // namespace

Adam::Adam(std::vector<Parameter*> parameters, AdamOptions options) : parameters_(std::move(parameters)), options_(options) {
  if (options_.lazy && options_.deferred) throw std::invalid_argument("Adam: lazy and deferred exclude each other");
  for (const Parameter* p : parameters_) {
    m_.emplace_back(p->size(), 0.0f);
    v_.emplace_back(p->size(), 0.0f);
    synced_.emplace_back(options_.deferred && p->sparse ? p->size() / p->row_size : 0, 0);
  }
}

Adam::State Adam::state() {
  sync_all();
  return {m_, v_, step_};
}

void Adam::restore(State state) {
  if (state.m.size() != m_.size() || state.v.size() != v_.size())
    throw std::invalid_argument("optimiser state does not match the model's parameters");
  for (size_t i = 0; i < m_.size(); ++i)
    if (state.m[i].size() != m_[i].size() || state.v[i].size() != v_[i].size())
      throw std::invalid_argument("optimiser state does not match parameter '" + parameters_[i]->name + "'");
  m_ = std::move(state.m);
  v_ = std::move(state.v);
  step_ = state.step;
  // A restored state is current everywhere; the per-step constants are recomputed from here on.
  for (auto& synced : synced_) std::fill(synced.begin(), synced.end(), step_);
  step_sizes_.assign(static_cast<size_t>(step_), 0.0f);
  inv_sqrt_c2s_.assign(static_cast<size_t>(step_), 0.0f);
}

void Adam::register_state(TrainingState& training) {
  training.add(
      [this](Checkpoint& c) {
        const State s = state();
        for (size_t i = 0; i < parameters_.size(); ++i) {
          c.floats["adam_m/" + parameters_[i]->name] = s.m[i];
          c.floats["adam_v/" + parameters_[i]->name] = s.v[i];
        }
        c.header["adam_step"] = s.step;
      },
      [this](const Checkpoint& c) {
        State s;
        for (const Parameter* p : parameters_) {
          s.m.push_back(c.float_array("adam_m/" + p->name));
          s.v.push_back(c.float_array("adam_v/" + p->name));
        }
        s.step = c.header.at("adam_step").get<long>();
        restore(std::move(s));
      });
}

void Adam::catch_up(size_t parameter, uint32_t row) { catch_up_through(parameter, row, step_); }

void Adam::catch_up_through(size_t parameter, uint32_t row, long through) {
  if (synced_[parameter].empty()) return;
  long& synced = synced_[parameter][row];
  if (synced >= through) return;
  const Parameter& p = *parameters_[parameter];
  const size_t begin = row * p.row_size, end = begin + p.row_size;
  float* m = m_[parameter].data();
  float* v = v_[parameter].data();
  float* value = parameters_[parameter]->value.data();
  const float b1 = options_.beta1, b2 = options_.beta2, eps = options_.epsilon;
  for (long s = synced; s < through; ++s) {
    const float step_size = step_sizes_[static_cast<size_t>(s)], inv_sqrt_c2 = inv_sqrt_c2s_[static_cast<size_t>(s)];
    for (size_t k = begin; k < end; ++k) update(0.0f, b1, b2, eps, step_size, inv_sqrt_c2, m[k], v[k], value[k]);
  }
  synced = through;
}

void Adam::catch_up_rows(const std::vector<std::pair<uint32_t, uint32_t>>& rows) {
#pragma omp parallel for schedule(dynamic, 32)
  for (size_t i = 0; i < rows.size(); ++i) catch_up(rows[i].first, rows[i].second);
}

void Adam::sync_all() {
  std::vector<std::pair<uint32_t, uint32_t>> rows;
  for (size_t i = 0; i < synced_.size(); ++i)
    for (size_t r = 0; r < synced_[i].size(); ++r)
      if (synced_[i][r] != step_) rows.emplace_back(static_cast<uint32_t>(i), static_cast<uint32_t>(r));
  catch_up_rows(rows);
}

void Adam::step() {
  ++step_;
  const double correction1 = 1.0 - std::pow(static_cast<double>(options_.beta1), static_cast<double>(step_));
  const double correction2 = 1.0 - std::pow(static_cast<double>(options_.beta2), static_cast<double>(step_));
  // PyTorch's form: p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps).
  const float step_size = static_cast<float>(options_.learning_rate / correction1);
  const float inv_sqrt_c2 = static_cast<float>(1.0 / std::sqrt(correction2));
  const float b1 = options_.beta1, b2 = options_.beta2, eps = options_.epsilon;
  if (options_.deferred) {
    step_sizes_.push_back(step_size);
    inv_sqrt_c2s_.push_back(inv_sqrt_c2);
  }
  // Work items of at most 64K floats, so that one large table does not leave a thread idle. Updates
  // are element-wise and independent: the result does not depend on the number of threads.
  struct Chunk {
    size_t parameter, begin, end;
  };
  std::vector<Chunk> chunks;
  constexpr size_t kChunk = 1 << 16;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    Parameter& p = *parameters_[i];
    if (p.sparse && (options_.lazy || options_.deferred)) {
      for (uint32_t row : p.touched) chunks.push_back({i, row * p.row_size, (row + 1) * p.row_size});
    } else {
      for (size_t begin = 0; begin < p.size(); begin += kChunk) chunks.push_back({i, begin, std::min(p.size(), begin + kChunk)});
    }
  }
#pragma omp parallel for schedule(dynamic, 16)
  for (size_t c = 0; c < chunks.size(); ++c) {
    const Chunk& chunk = chunks[c];
    // A deferred row first takes the zero-gradient steps it missed, then this step's.
    if (!synced_[chunk.parameter].empty()) {
      const uint32_t row = static_cast<uint32_t>(chunk.begin / parameters_[chunk.parameter]->row_size);
      catch_up_through(chunk.parameter, row, step_ - 1);
      synced_[chunk.parameter][row] = step_;
    }
    float* m = m_[chunk.parameter].data();
    float* v = v_[chunk.parameter].data();
    float* value = parameters_[chunk.parameter]->value.data();
    float* grad = parameters_[chunk.parameter]->grad.data();
    for (size_t k = chunk.begin; k < chunk.end; ++k) {
      update(grad[k], b1, b2, eps, step_size, inv_sqrt_c2, m[k], v[k], value[k]);
      grad[k] = 0.0f;
    }
  }
  for (Parameter* p : parameters_) {
    if (!p->sparse) continue;
    for (uint32_t row : p->touched) p->is_touched[row] = 0;
    p->touched.clear();
  }
}

}  // namespace funnel::train
