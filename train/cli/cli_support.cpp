#include "train/cli/cli_support.hpp"

#include <cstdio>
#include <stdexcept>

#include "train/core/config_io.hpp"
#include "train/core/errors.hpp"
#include "train/data/prepared.hpp"

namespace funnel::train::cli {

using json = nlohmann::json;

std::unique_ptr<Model> open_model(const std::string& path, bool verify) {
  std::unique_ptr<Model> model;
  if (Status status = Model::load_file(path, &model); !status) throw std::runtime_error(status.to_string());
  if (!verify) return model;
  if (Status status = model->verify(); !status)
    throw std::runtime_error("'" + path + "' fails verification: " + status.message() + " (--no-verify answers without this check)");
  return model;
}

void add_no_verify_flag(CLI::App* command, bool& no_verify) {
  command->add_flag("--no-verify", no_verify,
                    "skip Model::verify() (checksums, key tables, item ids: O(file size)) and answer from the file as loaded");
}

std::string format_seconds(double seconds) {
  char buffer[32];
  if (seconds >= 60) std::snprintf(buffer, sizeof buffer, "%dm%02ds", static_cast<int>(seconds) / 60, static_cast<int>(seconds) % 60);
  else std::snprintf(buffer, sizeof buffer, "%.1fs", seconds);
  return buffer;
}

// The run's config as JSON: the file (or the defaults), then --set key=value pairs, then the shortcut flags.
json apply_overrides(json object, const TrainArgs& args) {
  for (const std::string& assignment : args.set) {
    const size_t equals = assignment.find('=');
    if (equals == std::string::npos || equals == 0) throw ConfigError("--set '" + assignment + "': expected key=value");
    const std::string key = assignment.substr(0, equals), text = assignment.substr(equals + 1);
    // A value that parses as JSON is taken as such (numbers, booleans, lists); anything else is a string.
    // "section.key" reaches into a sectioned config (train-funnel's).
    const size_t dot = key.find('.');
    json& target = dot == std::string::npos ? object[key] : object[key.substr(0, dot)][key.substr(dot + 1)];
    target = json::accept(text) ? json::parse(text) : json(text);
  }
  if (args.epochs) object["epochs"] = *args.epochs;
  if (args.batch_size) object["batch_size"] = *args.batch_size;
  if (args.seed) object["seed"] = *args.seed;
  if (args.threads) object["threads"] = *args.threads;
  return object;
}

std::string config_source(const TrainArgs& args) { return args.config.empty() ? "command line" : args.config + " + command line"; }

json parse_config_file(const std::string& path) { return config_io::parse_file(path); }

void require_description(const TrainArgs& args, const std::string& verb) {
  if (is_prepared_dataset(args.data))
    throw ConfigError(args.data + ": a prepared folder; " + verb + " reads a dataset description (JSON) — train, train-ranker and autofas stream prepared data");
}

void add_ctr_stream_option(CLI::App* command, TrainArgs& args) {
  command->add_option("--shuffle-buffer", args.shuffle_buffer,
                      "with a prepared folder (funnel prepare --ctr): CTR instances held in the shuffle buffer (16 + 4 max_history bytes each)")
      ->capture_default_str();
}

void add_training_options(CLI::App* command, TrainArgs& args, const std::string& config_name, const std::string& set_example) {
  command->add_option("--data", args.data, "dataset description (JSON); for train, train-ranker and autofas also a prepared folder (funnel prepare)")
      ->required()
      ->check(CLI::ExistingPath);
  command->add_option("--data-root", args.data_root, "folder the description's file paths are relative to");
  command->add_option("--config", args.config, config_name + " (JSON); defaults for every missing field")->check(CLI::ExistingFile);
  command->add_option("--out", args.out, "model file to write")->capture_default_str();
  command->add_option("--epochs", args.epochs, "override the config's epochs");
  command->add_option("--batch-size", args.batch_size, "override the config's batch_size");
  command->add_option("--seed", args.seed, "override the config's seed");
  command->add_option("--threads", args.threads, "override the config's threads (0: every core)");
  command->add_option("--set", args.set, "override any config field: key=value (repeatable), e.g. --set " + set_example);
  command->add_option("--metrics-log", args.metrics_log, "write per-epoch metrics as JSON lines");
  command->add_option("--report", args.report, "write the run's final metrics and throughput as JSON");
}

void add_checkpoint_options(CLI::App* command, TrainArgs& args) {
  command->add_option("--checkpoint", args.checkpoint, "write a checkpoint after every epoch (atomically)");
  // Not checked here: under mpirun each rank reads "<resume>.rank<r>" (docs/distributed.md); the trainer
  // names a missing file.
  command->add_option("--resume", args.resume, "continue from a checkpoint of the same run (the same data and config)");
}

}  // namespace funnel::train::cli
