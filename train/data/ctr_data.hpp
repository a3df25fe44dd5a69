// CTR instances for the ranking stage, built by the DIN protocol from time-ordered interactions, or
// read from the DIEN/CAN file format.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "train/data/dataset.hpp"

namespace funnel::train {

struct CtrOptions {
  uint32_t max_history = 50;  // behaviours kept before a target (the most recent ones)
  uint32_t negatives = 1;     // sampled negatives per positive (1:1 default; 10 for the imbalanced setting)
  uint64_t data_seed = 0;     // seeds the negative sampling only
};

// One split's instances. A negative shares its positive's user and history.
struct CtrSplit {
  std::vector<uint32_t> history;  // index into CtrInstances' histories
  std::vector<uint32_t> user;     // row of the users table
  std::vector<uint32_t> target;   // row of the items table
  std::vector<float> label;       // 1 positive, 0 negative
  size_t size() const { return label.size(); }
};

struct CtrInstances {
  // History h holds the item rows history_items[history_offsets[h] .. history_offsets[h + 1]), oldest
  // first, at most max_history of them.
  std::vector<uint32_t> history_offsets{0};
  std::vector<uint32_t> history_items;
  CtrSplit train, validation, test;  // validation may be empty (the DIEN files have none)

  size_t history_count() const { return history_offsets.size() - 1; }
};

// The DIN protocol: per user, interactions in time order (ties keep the file order) s_1..s_n; the test
// instance is s_n with history s_1..s_{n-1}, validation s_{n-1}, training every s_t for t = 2..n-2
// (histories truncated to the last max_history). Users with fewer than 3 interactions are skipped.
// Every positive gets `negatives` targets drawn uniformly from the items table and redrawn while the
// user ever interacted with them; drawn once, seeded by data_seed, in the order train, validation, test.
CtrInstances build_ctr_instances(const Dataset& data, const CtrOptions& options);

struct PreparedCtr;

struct CtrDataset {
  CtrDataset() = default;
  CtrDataset(Dataset data_, CtrInstances instances_) : data(std::move(data_)), instances(std::move(instances_)) {}
  Dataset data;
  // In memory: every split. Streamed from a prepared folder (`streamed` set, ctr_stream.hpp): validation and test
  // only; the training instances are read a batch at a time from the folder's CTR shards.
  CtrInstances instances;
  std::shared_ptr<const PreparedCtr> streamed;
};

// Reads a dataset description (docs/dataset-format.md), or opens a prepared folder (`funnel prepare --ctr`)
// whose training instances stream through a shuffle buffer of `shuffle_buffer` rows (open_prepared_ctr says how
// `options` must agree with the prepared ones); rank `rank` of `world` opens only its own shards. A description with "format": "dien" names
// the DIEN/CAN files "train" and "test" (label, uid, mid, cat, mid_history, cat_history; histories joined
// by \x02) whose instances are used as they are; any other description is read by load_dataset and
// turned into instances by build_ctr_instances. Throws DataError naming file, line and field.
CtrDataset load_ctr_dataset(const std::string& description_path, const std::string& root_override,
                            const CtrOptions& options, uint64_t shuffle_buffer = uint64_t{1} << 18, uint32_t rank = 0, uint32_t world = 1);

}  // namespace funnel::train
