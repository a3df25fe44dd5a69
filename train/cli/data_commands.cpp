// The verbs that turn a dataset into another form: prepare (the prepared form that training streams,
// docs/dataset-format.md "Prepared datasets").
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>

#include "train/cli/cli_support.hpp"
#include "train/cli/commands.hpp"
#include "train/data/prepare.hpp"

namespace funnel::train::cli {

namespace {

class DataCommands final : public CommandFamily {
 public:
  explicit DataCommands(CLI::App& app) {
    prepare = app.add_subcommand("prepare", "encode a dataset once, split as the trainers split it, into a folder that `train` streams "
                                            "with bounded memory (fixed-width binary shards, holdouts, tables, a manifest)");
    prepare->add_option("data", description, "dataset description (JSON)")->required()->check(CLI::ExistingFile);
    prepare->add_option("--out", out, "folder to write (created if needed)")->required();
    prepare->add_option("--data-root", options.root_override, "folder the description's file paths are relative to");
    prepare->add_option("--shard-rows", options.shard_rows,
                        "training rows per shard (16 bytes each); an MPI rank r of N reads shards i with i % N == r")
        ->capture_default_str();
    prepare->add_option("--sort-rows", options.sort_rows, "rows held in memory at once while grouping by user (16 bytes each)")
        ->capture_default_str();
    prepare->add_flag("--ctr", options.ctr,
                      "also write the ranking stage's CTR instances (DIN protocol: histories, sampled negatives) that train-ranker, "
                      "autofas and train-funnel stream; their options are fixed here");
    prepare->add_option("--ctr-max-history", options.ctr_options.max_history, "behaviours kept before a target (a ranker may use fewer)")
        ->capture_default_str();
    prepare->add_option("--ctr-negatives", options.ctr_options.negatives, "sampled negatives per positive")->capture_default_str();
    prepare->add_option("--ctr-data-seed", options.ctr_options.data_seed, "seeds the negative sampling")->capture_default_str();
    prepare->add_option("--ctr-shard-rows", options.ctr_shard_rows, "CTR instances per shard (16 + 4 max_history bytes each)")
        ->capture_default_str();
  }

  std::optional<int> run() override {
    if (!*prepare) return std::nullopt;
    const auto start = std::chrono::steady_clock::now();
    const PrepareSummary s = prepare_dataset(description, out, options);
    spdlog::info("prepared {}: {} users, {} items, {} interactions, {} training rows in {} shards ({} grouping passes) in {}", out, s.users,
                 s.items, s.interactions, s.train_rows, s.shards, s.grouping_passes,
                 format_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()));
    if (options.ctr)
      spdlog::info("CTR instances: {} training rows in {} shards (max_history {}, {} negative{} per positive, data_seed {})", s.ctr_train_rows,
                   s.ctr_shards, options.ctr_options.max_history, options.ctr_options.negatives, options.ctr_options.negatives == 1 ? "" : "s",
                   options.ctr_options.data_seed);
    return 0;
  }

 private:
  CLI::App* prepare = nullptr;
  std::string description, out;
  PrepareOptions options;
};

}  // namespace

std::unique_ptr<CommandFamily> add_data_commands(CLI::App& app) { return std::make_unique<DataCommands>(app); }

}  // namespace funnel::train::cli
