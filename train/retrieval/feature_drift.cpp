#include "train/retrieval/feature_drift.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace funnel::train {

DriftAverage average_drift(const std::vector<DriftRecord>& records, uint32_t delta) {
  DriftAverage average;
  for (const DriftRecord& r : records)
    if (r.delta == delta) {
      average.sum += r.sum;
      average.mean += r.mean;
      ++average.probes;
    }
  if (average.probes) {
    average.sum /= static_cast<double>(average.probes);
    average.mean /= static_cast<double>(average.probes);
  }
  return average;
}

DriftMonitor::DriftMonitor(std::vector<uint32_t> sample, std::vector<uint32_t> deltas, uint32_t interval)
    : sample_(std::move(sample)), deltas_(std::move(deltas)), interval_(interval) {
  std::sort(deltas_.begin(), deltas_.end());
  if (deltas_.empty() || deltas_.front() == 0 || interval_ <= deltas_.back())
    throw std::invalid_argument("feature drift: deltas must be positive and the interval larger than the largest");
}

std::vector<DriftRecord> DriftMonitor::after_step(long step, size_t dim, const Embed& embed) {
  std::vector<DriftRecord> records;
  if (sample_.empty()) return records;
  if (step % interval_ == 0) {
    base_.resize(sample_.size() * dim);
    embed(sample_, base_.data());
    base_step_ = step;
    return records;
  }
  if (base_.empty()) return records;
  const long delta = step - base_step_;
  if (!std::binary_search(deltas_.begin(), deltas_.end(), static_cast<uint32_t>(delta))) return records;
  current_.resize(sample_.size() * dim);
  embed(sample_, current_.data());
  DriftRecord record;
  record.step = step;
  record.delta = static_cast<uint32_t>(delta);
  for (size_t i = 0; i < sample_.size(); ++i) {
    double squares = 0;
    for (size_t k = 0; k < dim; ++k) {
      const double diff = static_cast<double>(current_[i * dim + k]) - base_[i * dim + k];
      squares += diff * diff;
    }
    record.sum += std::sqrt(squares);
  }
  record.mean = record.sum / static_cast<double>(sample_.size());
  records.push_back(record);
  if (record.delta == deltas_.back()) base_.clear();
  return records;
}

}  // namespace funnel::train
