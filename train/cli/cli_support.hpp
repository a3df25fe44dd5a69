// What the funnel command's subcommands share: the training commands' arguments and config overrides,
// opening a model, formatting durations.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "funnel/model.hpp"

namespace funnel::train::cli {

// Loads a model file; with `verify` (every command's default), also runs Model::verify() (checksums, key
// tables, item ids) and refuses a file that fails it, naming the tensor or table.
std::unique_ptr<Model> open_model(const std::string& path, bool verify = true);
// The --no-verify flag of a command that reads a model: answer from a file without Model::verify().
void add_no_verify_flag(CLI::App* command, bool& no_verify);

std::string format_seconds(double seconds);

struct TrainArgs {
  std::string data, data_root, config, out = "model.funnel", metrics_log, checkpoint, resume, report;
  std::optional<uint32_t> epochs, batch_size, threads;
  std::optional<uint64_t> seed;
  std::vector<std::string> set;
  uint64_t shuffle_buffer = uint64_t{1} << 18;  // train-ranker and autofas on a prepared folder: CTR rows in the shuffle buffer
};

// The run's config as JSON: the file (or the defaults), then --set key=value pairs, then the shortcut flags.
nlohmann::json apply_overrides(nlohmann::json object, const TrainArgs& args);
// Where the config came from, for error messages.
std::string config_source(const TrainArgs& args);
nlohmann::json parse_config_file(const std::string& path);

// Refuses a prepared folder (funnel prepare) as --data of a verb that does not stream: ConfigError naming it.
void require_description(const TrainArgs& args, const std::string& verb);

// --data, --config, --out, --epochs, --set... of a training command.
void add_training_options(CLI::App* command, TrainArgs& args, const std::string& config_name, const std::string& set_example);
// --shuffle-buffer of a trainer of CTR instances that streams a prepared folder (train-ranker, autofas).
void add_ctr_stream_option(CLI::App* command, TrainArgs& args);
// --checkpoint and --resume of a trainer whose runs resume (train, train-ranker, autofas).
void add_checkpoint_options(CLI::App* command, TrainArgs& args);

// `funnel autofas` (autofas_command.cpp).
int run_autofas(const TrainArgs& args);
// `funnel train-funnel` (train_funnel_command.cpp): stage files in `work_dir` (default: <out>.stages).
int run_train_funnel(const TrainArgs& args, const std::string& work_dir, bool resume);

}  // namespace funnel::train::cli
