// The funnel command-line tool: generate a dataset, train (retrieval, ranking, AutoFAS pre-ranking),
// evaluate, inspect, recommend, rank, prerank, update a catalogue, and measure the dense-layer latency
// table (bench-layers). The verbs live in families (commands.hpp); this file parses and reports errors.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "funnel/funnel.hpp"
#include "train/cli/commands.hpp"
#include "train/distributed/communicator.hpp"

int main(int argc, char** argv) {
  using namespace funnel::train::cli;
  CLI::App app{"funnel: train recommendation models and run them anywhere"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("funnel ") + funnel::kVersion);
  const std::unique_ptr<CommandFamily> families[] = {add_training_commands(app), add_data_commands(app), add_model_commands(app)};

  CLI11_PARSE(app, argc, argv);
  spdlog::set_pattern("[%H:%M:%S] %v");
  int code = 0;
  try {
    for (const auto& family : families)
      if (const std::optional<int> result = family->run()) {
        code = *result;
        break;
      }
  } catch (const std::exception& e) {
    // Under mpirun one rank's failure ends every rank ("rank r: <cause>", MPI_Abort): the others would wait
    // for it in their next collective call forever.
    if (funnel::train::built_with_mpi() && funnel::train::world().distributed()) funnel::train::world().abort(e.what(), 1);
    std::fprintf(stderr, "funnel: error: %s\n", e.what());
    code = 1;
  }
  funnel::train::finalize_world();
  return code;
}
