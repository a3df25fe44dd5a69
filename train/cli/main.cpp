// The funnel command-line tool: generate a dataset, train (retrieval, ranking, AutoFAS pre-ranking),
// evaluate, inspect, recommend, rank, prerank, update a catalogue, and measure the dense-layer latency
// table (bench-layers). The verbs live in families (commands.hpp); this file parses and reports errors.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "funnel/funnel.hpp"
#include "train/cli/commands.hpp"

int main(int argc, char** argv) {
  using namespace funnel::train::cli;
  CLI::App app{"funnel: train recommendation models and run them anywhere"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("funnel ") + funnel::kVersion);
  const std::unique_ptr<CommandFamily> families[] = {add_training_commands(app), add_model_commands(app)};

  CLI11_PARSE(app, argc, argv);
  spdlog::set_pattern("[%H:%M:%S] %v");
  try {
    for (const auto& family : families)
      if (const std::optional<int> code = family->run()) return *code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "funnel: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
