// One TrainingState per run: every piece of state a trainer must keep to continue exactly where it stopped
// is registered once, by name, and the state saves it to a checkpoint and restores it from one. No trainer
// lists its state twice (once to save, once to restore), so the two cannot drift apart.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/core/checkpoint.hpp"
#include "train/core/parameter.hpp"
#include "train/core/rng.hpp"

namespace funnel::train {

class TrainingState {
 public:
  // `identity`: what a checkpoint must match to be resumed by this run (dataset, sizes, model shape); a
  // difference is refused, naming the field.
  explicit TrainingState(nlohmann::json identity) : identity_(std::move(identity)) {}

  // A value kept in the checkpoint's JSON header: any type nlohmann::json converts both ways.
  template <typename T>
  void value(const std::string& name, T& value) {
    add([&value, name](Checkpoint& c) { c.header[name] = value; },
        [&value, name](const Checkpoint& c) { value = c.header.at(name).template get<T>(); });
  }
  // An array kept beside the header: float or uint32_t.
  template <typename T>
  void array(const std::string& name, std::vector<T>& values);
  void rng(const std::string& name, Rng& rng);
  // Every parameter's values, as "<prefix><parameter name>".
  void parameters(const std::vector<Parameter*>& parameters, const std::string& prefix = "param/");
  // A value saved for people reading the checkpoint (the effective config), never restored.
  void note(const std::string& name, nlohmann::json value) { notes_[name] = std::move(value); }
  // A part with state of its own shape (an optimiser's moments, a memory bank): it writes itself into
  // the checkpoint and reads itself back, throwing std::invalid_argument when what it reads does not fit.
  void add(std::function<void(Checkpoint&)> save, std::function<void(const Checkpoint&)> restore);

  // Written atomically: a crash while saving leaves the previous checkpoint.
  void save(const std::string& path) const;
  // Throws TrainingError naming the file and the first field that is missing or does not fit this run.
  void restore(const std::string& path);
  // The same from a checkpoint the caller has read already (load_checkpoint), named by its path.
  void restore(const Checkpoint& checkpoint);

 private:
  struct Part {
    std::function<void(Checkpoint&)> save;
    std::function<void(const Checkpoint&)> restore;
  };
  nlohmann::json identity_;
  nlohmann::json notes_ = nlohmann::json::object();
  std::vector<Part> parts_;
};

}  // namespace funnel::train
