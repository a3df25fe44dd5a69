// The funnel command's verbs, in families: each family adds its subcommands to the app and runs the one
// the user chose. main.cpp only parses and reports errors.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

namespace funnel::train::cli {

class CommandFamily {
 public:
  virtual ~CommandFamily() = default;
  // The chosen subcommand's exit code, or nullopt when it is not one of this family's.
  virtual std::optional<int> run() = 0;
};

// generate, train, train-ranker, autofas, eval: the verbs that need the trainer (training_commands.cpp).
std::unique_ptr<CommandFamily> add_training_commands(CLI::App& app);
// prepare: the verbs that turn a dataset into another form (data_commands.cpp).
std::unique_ptr<CommandFamily> add_data_commands(CLI::App& app);
// inspect, recommend, rank, prerank, update-catalogue, bench-layers: the verbs that only read or rewrite a
// model file, and need the SDK alone (model_commands.cpp).
std::unique_ptr<CommandFamily> add_model_commands(CLI::App& app);

}  // namespace funnel::train::cli
