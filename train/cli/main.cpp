// The funnel command-line tool: generate a dataset, train (retrieval, ranking, AutoFAS pre-ranking),
// evaluate, inspect, recommend, rank, prerank, update a catalogue, and measure the dense-layer latency
// table (bench-layers). The verbs live in families (commands.hpp); this file parses and reports errors.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

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
    // Only `train` and `train-ranker` are data-parallel (docs/distributed.md). Every other verb would run once
    // per rank and write the same files (or, with an empty model on ranks other than 0, worse): refuse it.
    const std::vector<CLI::App*> chosen = app.get_subcommands();
    const std::string verb = chosen.empty() ? std::string() : chosen.front()->get_name();
    if (verb != "train" && verb != "train-ranker" && funnel::train::world().distributed()) {
      if (funnel::train::world().rank() == 0)
        std::fprintf(stderr,
                     "funnel: error: '%s' is not data-parallel: run it as one process, without mpirun or srun "
                     "(only train and train-ranker train across ranks)\n",
                     verb.c_str());
      funnel::train::finalize_world();
      return 1;
    }
    for (const auto& family : families)
      if (const std::optional<int> result = family->run()) {
        code = *result;
        break;
      }
  } catch (const std::exception& e) {
    // Under mpirun one rank's failure ends every rank ("rank r: <cause>", MPI_Abort): the others would wait
    // for it in their next collective call forever.
    // (world() itself may be what failed: launched but refused; then there is no world to stop.)
    bool distributed = false;
    try {
      distributed = funnel::train::built_with_mpi() && funnel::train::world().distributed();
    } catch (const std::exception&) {
    }
    if (distributed) funnel::train::world().abort(e.what(), 1);
    std::fprintf(stderr, "funnel: error: %s\n", e.what());
    code = 1;
  }
  funnel::train::finalize_world();
  return code;
}
