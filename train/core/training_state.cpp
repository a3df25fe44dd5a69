#include "train/core/training_state.hpp"

#include <stdexcept>

#include "train/core/errors.hpp"

namespace funnel::train {

namespace {

// The checkpoint's arrays of one element type: floats or integers.
std::map<std::string, std::vector<float>>& arrays(Checkpoint& c, const std::vector<float>*) { return c.floats; }
std::map<std::string, std::vector<uint32_t>>& arrays(Checkpoint& c, const std::vector<uint32_t>*) { return c.integers; }
const std::vector<float>& saved_array(const Checkpoint& c, const std::string& name, const std::vector<float>*) { return c.float_array(name); }
const std::vector<uint32_t>& saved_array(const Checkpoint& c, const std::string& name, const std::vector<uint32_t>*) {
  return c.integer_array(name);
}

// An array restored in place, refused when its length is not this run's.
template <typename T>
void restore_array(const Checkpoint& c, const std::string& name, std::vector<T>& values) {
  const std::vector<T>& saved = saved_array(c, name, &values);
  if (saved.size() != values.size())
    throw std::invalid_argument("array '" + name + "' holds " + std::to_string(saved.size()) + " values, this run " +
                                std::to_string(values.size()));
  values = saved;
}

}  // namespace

template <typename T>
void TrainingState::array(const std::string& name, std::vector<T>& values) {
  add([&values, name](Checkpoint& c) { arrays(c, &values)[name] = values; },
      [&values, name](const Checkpoint& c) { restore_array(c, name, values); });
}
template void TrainingState::array(const std::string& name, std::vector<float>& values);
template void TrainingState::array(const std::string& name, std::vector<uint32_t>& values);

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

void TrainingState::restore(const std::string& path) { restore(load_checkpoint(path)); }

void TrainingState::restore(const Checkpoint& c) {
  const std::string& path = c.path;
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
