// The AutoFAS run from data to file: the ranking teacher (trained, or read from the teacher cache), the
// search on it (autofas.hpp), the derived student retrained from scratch with distillation (eq. 6), and one
// file holding the pre-ranking and ranking stages, with what was chosen and why in its metadata.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/data/ctr_data.hpp"
#include "train/export/export.hpp"
#include "train/pre_ranking/autofas.hpp"
#include "train/ranking/ranker_model.hpp"
#include "train/ranking/ranker_training.hpp"

namespace funnel::train {

struct AutoFasObservers {
  // The progress of one ranking run: "teacher" or "student", and its epochs.
  std::function<RankerObserver(const std::string& what, uint32_t epochs)> training;
  AutoFasObserver search;
};

struct AutoFasResult {
  bool teacher_from_cache = false;  // read from config.teacher_cache
  RankerResult teacher;  // with the cache, only the test metrics are known
  std::unique_ptr<RankerModel> teacher_model;
  AutoFasSearch search;
  RankerConfig student_config;
  RankerResult student;
  std::vector<uint8_t> model_file;  // the pre-ranking and ranking stages
};

// Checkpoints of an AutoFAS run, one file that follows the run through its stages: the teacher's epochs
// (its ranking run's state), then the trained teacher once its training is over, then the student's epochs
// with the teacher beside them. The search is not checkpointed: a run resumed after the teacher repeats
// it, which is deterministic on one thread and short next to the two trainings.
struct AutoFasCheckpoints {
  std::string checkpoint;  // written atomically after every epoch of both trainings when not empty
  std::string resume;      // continue from this checkpoint when not empty
  std::function<void(const std::string&)> on_note;  // where a resumed run goes on from
};

// `metadata` joins the file's own (the configs, the search's record, both stages' test metrics). A resumed
// run gives the uninterrupted run's file bit for bit on one thread; a checkpoint of another run (another
// dataset or config field but the epochs, threads and file names) is refused, naming the field.
AutoFasResult train_autofas(const CtrDataset& ctr, const AutoFasConfig& config, const LatencyTable& table,
                            const AutoFasObservers& observers = {}, const Metadata& metadata = {},
                            const AutoFasCheckpoints& checkpoints = {});

}  // namespace funnel::train
