// funnel.train, funnel.train_ranker, funnel.autofas (the low-level calls funnel/_training.py wraps): the
// trainer's own loops (train/), fed from a dataset description or from columns in memory
// (train/data/column_source.hpp). Training runs with the GIL released; every few steps the observer takes
// the GIL back to check for Ctrl-C and to call the Python progress callback, and an exception from either
// unwinds the trainer, leaving the last checkpoint it wrote (written atomically after each epoch) in place.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>

#include "convert.hpp"
#include "funnel/layer_latency.hpp"
#include "train/core/atomic_file.hpp"
#include "train/core/errors.hpp"
#include "train/data/column_source.hpp"
#include "train/data/ctr_data.hpp"
#include "train/data/split.hpp"
#include "train/data/synthetic.hpp"
#include "train/pre_ranking/autofas_training.hpp"
#include "train/ranking/ranker_training.hpp"
#include "train/retrieval/two_tower_training.hpp"

namespace funnel::python {

namespace {

using json = nlohmann::json;
using namespace funnel::train;

py::object to_python(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return py::none();
    case json::value_t::boolean: return py::bool_(value.get<bool>());
    case json::value_t::number_integer: return py::int_(value.get<int64_t>());
    case json::value_t::number_unsigned: return py::int_(value.get<uint64_t>());
    case json::value_t::number_float: return py::float_(value.get<double>());
    case json::value_t::string: return py::str(value.get<std::string>());
    case json::value_t::array: {
      py::list out;
      for (const json& v : value) out.append(to_python(v));
      return out;
    }
    case json::value_t::object: {
      py::dict out;
      for (const auto& [k, v] : value.items()) out[py::str(k)] = to_python(v);
      return out;
    }
    default: return py::none();
  }
}

// The config as the Python layer hands it (a JSON text of the dict), parsed; the trainer's *_from_json
// refuses unknown keys and wrong types.
json parse_config(const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw ConfigError(std::string("config: not valid JSON: ") + e.what());
  }
}

TextColumns text_columns(py::handle spec, const std::string& name) {
  TextColumns table;
  table.name = name;
  table.names = py::cast<std::vector<std::string>>(spec["names"]);
  table.values = py::cast<std::vector<std::vector<std::string>>>(spec["values"]);
  return table;
}

// {"name", "interactions": {"names", "values", "user", "item", "timestamp"}, "users": {..., "key", "features"} or None,
// "items": ...}, as funnel/_data.py builds it from DataFrames or arrays.
ColumnDataset column_dataset(py::handle spec) {
  ColumnDataset source;
  source.name = py::cast<std::string>(spec["name"]);
  py::handle interactions = spec["interactions"];
  source.interactions.table = text_columns(interactions, "interactions");
  source.interactions.user = py::cast<size_t>(interactions["user"]);
  source.interactions.item = py::cast<size_t>(interactions["item"]);
  source.interactions.timestamp = py::cast<int>(interactions["timestamp"]);
  for (const char* entity : {"users", "items"}) {
    py::handle table = spec[entity];
    if (table.is_none()) continue;
    EntityColumns columns;
    columns.table = text_columns(table, entity);
    columns.key = py::cast<size_t>(table["key"]);
    columns.features = parse_feature_defs(json{{"features", parse_config(py::cast<std::string>(table["features"]))}}, entity);
    (std::string(entity) == "users" ? source.users : source.items) = std::move(columns);
  }
  return source;
}

// Runs `work` with the GIL released (or, kReleaseGil false, held: work that reads Python objects) and turns the trainer's errors into Python exceptions: bad data and
// configs are ValueError (their messages name the file, line and field), TrainingError is
// funnel.TrainingError; a Python exception raised in a callback (KeyboardInterrupt) goes on as it is.
template <bool kReleaseGil = true, typename Work>
auto without_gil(Work&& work) {
  std::optional<std::string> value_error, training_error, runtime_error;
  try {
    std::optional<py::gil_scoped_release> release;
    if constexpr (kReleaseGil) release.emplace();
    return work();
  } catch (const ConfigError& e) {
    value_error = e.what();
  } catch (const DataError& e) {
    value_error = e.what();
  } catch (const TrainingError& e) {
    training_error = e.what();
  } catch (const py::error_already_set&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    runtime_error = e.what();
  }
  if (value_error) throw py::value_error(*value_error);
  if (training_error) raise_training_error(*training_error);
  throw std::runtime_error(*runtime_error);
}

// What the data argument names: a dataset description's path (with its root), or columns in memory.
struct DataSource {
  std::string path, root;
  std::optional<ColumnDataset> columns;
};

DataSource data_source(py::handle data, const std::string& root) {
  DataSource source;
  if (PyUnicode_Check(data.ptr())) {
    source.path = py::cast<std::string>(data);
    source.root = root;
  } else {
    source.columns = without_gil</*kReleaseGil=*/false>([&] { return column_dataset(data); });
  }
  return source;
}

// Python's side of the trainer's observers. Every call takes the GIL, lets Python run its signal handlers
// (Ctrl-C raises KeyboardInterrupt there) and calls `progress` with one dict; a Python exception becomes
// error_already_set, which unwinds the trainer.
class Callbacks {
 public:
  Callbacks(py::object progress, py::object epoch) : progress_(std::move(progress)), epoch_(std::move(epoch)) {}

  void progress(const char* stage, uint32_t epoch, uint32_t epochs, size_t step, size_t steps, double loss, double rate) const {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (progress_.is_none()) return;
    py::dict event;
    event["stage"] = stage;
    event["epoch"] = epoch;
    event["epochs"] = epochs;
    event["step"] = step;
    event["steps"] = steps;
    event["loss"] = loss;
    event["samples_per_second"] = rate;
    progress_(event);
  }
  void epoch(const std::string& stage, const json& record) const {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (epoch_.is_none()) return;
    py::dict event = to_python(record);
    event["stage"] = stage;
    epoch_(event);
  }

  TrainObserver retrieval(uint32_t epochs) const {
    TrainObserver observer;
    observer.on_progress = [this, epochs](uint32_t epoch, size_t step, size_t steps, double loss, double rate) {
      progress("retrieval", epoch, epochs, step, steps, loss, rate);
    };
    observer.on_epoch = [this](const EpochRecord& r) { epoch("retrieval", epoch_json(r)); };
    return observer;
  }
  RankerObserver ranking(const std::string& stage, uint32_t epochs) const {
    RankerObserver observer;
    observer.on_progress = [this, stage, epochs](uint32_t epoch, size_t step, size_t steps, double loss, double rate) {
      progress(stage.c_str(), epoch, epochs, step, steps, loss, rate);
    };
    observer.on_epoch = [this, stage](const RankerEpoch& r) { epoch(stage, ranker_epoch_json(r)); };
    return observer;
  }

  static json epoch_json(const EpochRecord& r) {
    return {{"epoch", r.epoch}, {"loss", r.loss}, {"ssl_loss", r.ssl_loss}, {"samples_per_second", r.samples_per_second},
            {"learning_rate", r.learning_rate}, {"steps", r.steps}, {"cbns_active", r.cbns_active}, {"validation", r.validation.to_json()}};
  }
  static json ranker_epoch_json(const RankerEpoch& r) {
    return {{"epoch", r.epoch}, {"loss", r.loss}, {"train_seconds", r.train_seconds}, {"samples_per_second", r.samples_per_second},
            {"validation", ctr_metrics_json(r.validation)}, {"test", ctr_metrics_json(r.test)}};
  }

 private:
  py::object progress_, epoch_;
};

// The model file goes to `out` (atomically) when given; the result carries its bytes otherwise.
void deliver(const std::vector<uint8_t>& file, const std::string& out, py::dict& result) {
  if (out.empty()) {
    result["model_bytes"] = py::bytes(reinterpret_cast<const char*>(file.data()), file.size());
    result["model_path"] = py::none();
  } else {
    without_gil([&] { write_file_atomically(out, file); });
    result["model_path"] = out;
  }
}

py::dict train_two_tower_py(py::handle data, const std::string& root, const std::string& config_text, const std::string& out,
                            const std::string& checkpoint, const std::string& resume, py::object progress, py::object on_epoch) {
  const DataSource source = data_source(data, root);
  const Callbacks callbacks(std::move(progress), std::move(on_epoch));
  struct Run {
    TrainConfig config;
    Dataset data;
    TrainResult result;
  };
  const Run run = without_gil([&] {
    Run r;
    r.config = config_from_json(parse_config(config_text), "config");
    r.data = source.columns ? dataset_from_columns(*source.columns) : load_dataset(source.path, source.root);
    TrainOptions options;
    options.checkpoint = checkpoint;
    options.resume = resume;
    options.observer = callbacks.retrieval(r.config.epochs);
    r.result = train_two_tower(r.data, leave_last_out(r.data), r.config, options);
    return r;
  });
  const TrainResult& r = run.result;
  py::dict result;
  deliver(r.model_file, out, result);
  py::list history;
  for (const EpochRecord& e : r.history) history.append(to_python(Callbacks::epoch_json(e)));
  result["history"] = history;
  result["best_epoch"] = r.best_epoch;
  result["stopped_early"] = r.stopped_early;
  result["cbns_start_step"] = r.cbns_start_step;
  result["test"] = to_python(r.test.to_json());
  result["most_popular_test"] = to_python(r.popular_test.to_json());
  result["train_seconds"] = r.train_seconds;
  result["samples_per_second"] = r.samples_per_second;
  result["train_interactions"] = r.train_interactions;
  result["config"] = to_python(config_to_json(run.config));
  result["dataset"] = to_python(json{{"name", run.data.name}, {"users", run.data.users.size()}, {"items", run.data.items.size()},
                                     {"interactions", run.data.interactions.size()}});
  return result;
}

CtrDataset ctr_dataset(const DataSource& source, const CtrOptions& options) {
  if (!source.columns) return load_ctr_dataset(source.path, source.root, options);
  CtrDataset ctr;
  ctr.data = dataset_from_columns(*source.columns);
  ctr.instances = build_ctr_instances(ctr.data, options);
  return ctr;
}

json ranker_result_json(const RankerResult& r) {
  json history = json::array();
  for (const RankerEpoch& e : r.history) history.push_back(Callbacks::ranker_epoch_json(e));
  return {{"history", history},
          {"best_epoch", r.best_epoch},
          {"validation", ctr_metrics_json(r.validation)},
          {"test", ctr_metrics_json(r.test)},
          {"parameters", r.parameters},
          {"train_samples", r.train_samples},
          {"train_seconds", r.train_seconds},
          {"samples_per_second", r.samples_per_second}};
}

json instance_counts(const CtrDataset& ctr) {
  const CtrInstances& in = ctr.instances;
  return {{"name", ctr.data.name}, {"users", ctr.data.users.size()}, {"items", ctr.data.items.size()},
          {"instances", {{"train", in.train.size()}, {"validation", in.validation.size()}, {"test", in.test.size()}}}};
}

py::dict train_ranker_py(py::handle data, const std::string& root, const std::string& config_text, const std::string& out,
                         const std::string& checkpoint, const std::string& resume, py::object progress, py::object on_epoch) {
  const DataSource source = data_source(data, root);
  const Callbacks callbacks(std::move(progress), std::move(on_epoch));
  struct Run {
    RankerConfig config;
    json dataset;
    RankerResult result;
  };
  const Run run = without_gil([&] {
    Run r;
    r.config = ranker_config_from_json(parse_config(config_text), "config");
    const CtrDataset ctr = ctr_dataset(source, r.config.ctr_options());
    r.dataset = instance_counts(ctr);
    RankerCheckpoints checkpoints;
    checkpoints.checkpoint = checkpoint;
    checkpoints.resume = resume;
    r.result = train_ranker(ctr, r.config, callbacks.ranking("ranking", r.config.epochs), {}, nullptr, checkpoints);
    return r;
  });
  py::dict result = to_python(ranker_result_json(run.result));
  deliver(run.result.model_file, out, result);
  result["config"] = to_python(ranker_config_to_json(run.config));
  result["dataset"] = to_python(run.dataset);
  return result;
}

py::dict autofas_py(py::handle data, const std::string& root, const std::string& config_text, const std::string& latency_text,
                    const std::string& out, const std::string& checkpoint, const std::string& resume, py::object progress,
                    py::object on_epoch) {
  const DataSource source = data_source(data, root);
  const Callbacks callbacks(std::move(progress), std::move(on_epoch));
  struct Run {
    AutoFasConfig config;
    json dataset, search;
    AutoFasResult result;
  };
  const Run run = without_gil([&] {
    Run r;
    r.config = autofas_config_from_json(parse_config(config_text), "config");
    if (latency_text.empty() && r.config.latency_table.empty())
      throw ConfigError("autofas needs a latency table measured on the deployment target: funnel.bench_layers() here, "
                        "`funnel bench-layers --out latency.json` or wasm/tools/bench_layers.mjs there, passed as latency_table=");
    const LatencyTable table = latency_text.empty() ? LatencyTable::load(r.config.latency_table)
                                                    : LatencyTable::from_json(parse_config(latency_text), "latency_table");
    const CtrDataset ctr = ctr_dataset(source, r.config.teacher.ctr_options());
    r.dataset = instance_counts(ctr);
    AutoFasObservers observers;
    observers.training = [&callbacks](const std::string& what, uint32_t epochs) { return callbacks.ranking(what, epochs); };
    const uint32_t search_epochs = r.config.search_epochs;
    observers.search.on_progress = [&callbacks, search_epochs](uint32_t epoch, size_t step, size_t steps, double loss1, double, double, double) {
      callbacks.progress("search", epoch, search_epochs, step, steps, loss1, NAN);
    };
    AutoFasCheckpoints checkpoints;
    checkpoints.checkpoint = checkpoint;
    checkpoints.resume = resume;
    r.result = train_autofas(ctr, r.config, table, observers, {}, checkpoints);
    r.search = r.result.search.to_json(r.config, table);
    return r;
  });
  py::dict result;
  deliver(run.result.model_file, out, result);
  result["teacher"] = to_python(ranker_result_json(run.result.teacher));
  result["student"] = to_python(ranker_result_json(run.result.student));
  result["student_config"] = to_python(ranker_config_to_json(run.result.student_config));
  result["search"] = to_python(run.search);
  result["config"] = to_python(autofas_config_to_json(run.config));
  result["dataset"] = to_python(run.dataset);
  return result;
}

}  // namespace

void register_training(py::module_& m) {
  m.def("_train_two_tower", &train_two_tower_py, py::arg("data"), py::arg("root"), py::arg("config"), py::arg("out"), py::arg("checkpoint"),
        py::arg("resume"), py::arg("progress"), py::arg("on_epoch"));
  m.def("_train_ranker", &train_ranker_py, py::arg("data"), py::arg("root"), py::arg("config"), py::arg("out"), py::arg("checkpoint"),
        py::arg("resume"), py::arg("progress"), py::arg("on_epoch"));
  m.def("_autofas", &autofas_py, py::arg("data"), py::arg("root"), py::arg("config"), py::arg("latency_table"), py::arg("out"),
        py::arg("checkpoint"), py::arg("resume"), py::arg("progress"), py::arg("on_epoch"));
  m.def(
      "generate",
      [](const std::string& out, uint32_t users, uint32_t items, uint64_t seed) {
        SyntheticOptions options;
        options.users = users;
        options.items = items;
        options.seed = seed;
        return without_gil([&] { return write_synthetic_dataset(out, options); });
      },
      py::arg("out"), py::kw_only(), py::arg("users") = SyntheticOptions{}.users, py::arg("items") = SyntheticOptions{}.items,
      py::arg("seed") = SyntheticOptions{}.seed,
      "Write the built-in synthetic dataset (users.csv, items.csv, interactions.csv, dataset.json) into the folder `out`;\n"
      "returns the path of dataset.json (what `funnel generate` writes).");
  m.def(
      "bench_layers",
      [](size_t candidates, size_t repeats) {
        LayerLatencyOptions options;
        options.candidates = candidates;
        options.repeats = repeats;
        LayerLatencyTable table;
        Status status;
        {
          py::gil_scoped_release release;
          status = measure_layer_latency(options, &table);
        }
        check(status);
        return py::module_::import("json").attr("loads")(layer_latency_json(table));
      },
      py::kw_only(), py::arg("candidates") = LayerLatencyOptions{}.candidates, py::arg("repeats") = LayerLatencyOptions{}.repeats,
      "Measure the dense-layer latency table AutoFAS reads, on this machine, through the SDK (`funnel bench-layers`);\n"
      "returns it as a dict (pass it to funnel.autofas as latency_table=).");
}

}  // namespace funnel::python
