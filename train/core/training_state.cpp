#include "train/core/training_state.hpp"

#include <stdexcept>

#include "train/core/errors.hpp"

namespace funnel::train {

void TrainingState::array(const std::string& name, std::vector<float>& values) {
  add([&values, name](Checkpoint& c) { c.floats[name] = values; },
      [&values, name](const Checkpoint& c) {
        const std::vector<float>& saved = c.float_array(name);
        if (saved.size() != values.size())
          throw std::invalid_argument("array '" + name + "' holds " + std::to_string(saved.size()) + " values, this run " +
                                      std::to_string(values.size()));
        values = saved;
      });
}

void TrainingState::array(const std::string& name, std::vector<uint32_t>& values) {
  add([&values, name](Checkpoint& c) { c.integers[name] = values; },
      [&values, name](const Checkpoint& c) {
        const std::vector<uint32_t>& saved = c.integer_array(name);
        if (saved.size() != values.size())
          throw std::invalid_argument("array '" + name + "' holds " + std::to_string(saved.size()) + " values, this run " +
                                      std::to_string(values.size()));
        values = saved;
      });
}

void TrainingState::rng(const std::string& name, Rng& rng) {
  add([&rng, name](Checkpoint& c) { c.header[name] = rng.state(); },
      [&rng, name](const Checkpoint& c) { rng.restore(c.header.at(name).get<uint64_t>()); });
}

void TrainingState::parameters(const std::vector<Parameter*>& parameters, const std::string& prefix) {
  for (Parameter* p : parameters) array(prefix + p->name, p->value);
}

void TrainingState::add(std::function<void(Checkpoint&)> save, std::function<void(const Checkpoint&)> restore) {
  parts_.push_back({std::move(save), std::move(restore)});
}

void TrainingState::save(const std::string& path) const {
  Checkpoint c;
  c.header = {{"identity", identity_}, {"notes", notes_}};
  for (const Part& part : parts_) part.save(c);
  save_checkpoint(path, c);
}

void TrainingState::restore(const std::string& path) {
  const Checkpoint c = load_checkpoint(path);
  try {
    const nlohmann::json& saved = c.header.at("identity");
    for (const auto& [field, value] : identity_.items())
      if (!saved.contains(field) || saved.at(field) != value)
        throw TrainingError(path + ": the checkpoint was written for another run: its '" + field + "' is " +
                            (saved.contains(field) ? saved.at(field).dump() : std::string("missing")) + ", this run's " +
                            value.dump());
    for (const Part& part : parts_) part.restore(c);
  } catch (const nlohmann::json::exception& e) {
    throw TrainingError(path + ": the checkpoint's header is incomplete: " + e.what());
  } catch (const std::invalid_argument& e) {
    throw TrainingError(path + ": the checkpoint does not fit this run: " + e.what());
  }
}

}  // namespace funnel::train
