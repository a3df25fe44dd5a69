#include "train/pipeline/funnel_training.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "funnel/layer_latency.hpp"
#include "funnel/model.hpp"
#include "train/core/atomic_file.hpp"
#include "train/core/errors.hpp"
#include "train/data/ctr_data.hpp"
#include "train/data/split.hpp"

namespace funnel::train {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// What a stage file records of the run that made it: the dataset and the sections that shaped the stage.
// A resumed run reuses the file only when this is what it would write now.
constexpr char kStageKey[] = "funnel_stage";

std::string stage_record(const Dataset& data, const json& sections) {
  return json{{"dataset", data.name},
              {"users", data.users.size()},
              {"items", data.items.size()},
              {"interactions", data.interactions.size()},
              {"config", sections}}
      .dump();
}

// The stage file at `path` when it exists, loads, and was made by a run recording `record`; else null.
std::unique_ptr<Model> reusable_stage(const std::string& path, const std::string& record) {
  if (!fs::exists(path)) return nullptr;
  std::unique_ptr<Model> model;
  if (!Model::load_file(path, &model)) return nullptr;
  for (const auto& [key, value] : model->metadata())
    if (key == kStageKey && value == record) return model;
  return nullptr;
}

std::unique_ptr<Model> load_stage(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::unique_ptr<Model> model;
  if (Status s = Model::load_bytes(bytes.data(), bytes.size(), &model); !s) throw TrainingError(path + ": the stage file does not load: " + s.to_string());
  return model;
}

void note(const FunnelTrainingOptions& options, const std::string& text) {
  if (options.on_note) options.on_note(text);
}

// What a stopped run left in the work folder for a stage (an epoch checkpoint, the teacher's cache) is kept
// for resuming only when the stage record written beside it (`<path>.stage`) is this run's. Left by a run
// whose section differed, it is removed and the stage trained afresh (the trainer would refuse it), as
// docs/cli.md promises. Returns whether `path` is there to resume from; the record is written for this run.
bool keep_for_resume(const FunnelTrainingOptions& options, const std::string& path, const std::string& record, const std::string& stage) {
  const std::string sidecar = path + ".stage";
  bool keep = false;
  if (options.resume && fs::exists(path)) {
    std::ifstream in(sidecar, std::ios::binary);
    std::ostringstream saved;
    saved << in.rdbuf();
    keep = in.good() && saved.str() == record;
    if (!keep) {
      note(options, stage + ": removing " + path + ", left by a run whose config section differs; training the stage afresh");
      fs::remove(path);
    }
  }
  write_file_atomically(sidecar, record);
  return keep;
}

void remove_with_record(const std::string& path) {
  fs::remove(path);
  fs::remove(path + ".stage");
}

// The latency table the search reads: the config's, or one measured here by the SDK (as `funnel bench-layers`
// does) over the widths the search can choose, kept in the work folder.
std::string latency_table(const AutoFasConfig& config, const FunnelTrainingOptions& options) {
  if (!config.latency_table.empty()) return config.latency_table;
  const std::string path = (fs::path(options.work_dir) / "latency.json").string();
  if (options.resume && fs::exists(path)) {
    note(options, "latency table: " + path + " (measured by the run being resumed)");
    return path;
  }
  LayerLatencyOptions grid;
  grid.outputs = {1};
  for (uint32_t w : config.operators)
    if (w > 0) grid.outputs.push_back(w);
  grid.inputs = grid.outputs;
  grid.inputs.erase(grid.inputs.begin());
  for (uint32_t w : {8u, 16u, 32u, 64u, 128u, 256u, 512u, 1024u}) grid.inputs.push_back(w);
  std::sort(grid.inputs.begin(), grid.inputs.end());
  grid.inputs.erase(std::unique(grid.inputs.begin(), grid.inputs.end()), grid.inputs.end());
  grid.repeats = 7;
  note(options, "measuring the dense-layer latency table here (no pre_ranking.latency_table given): " +
                    std::to_string(grid.inputs.size() * grid.outputs.size()) + " layer shapes");
  LayerLatencyTable table;
  if (Status s = measure_layer_latency(grid, &table); !s) throw TrainingError("measuring the latency table: " + s.to_string());
  const std::string text = layer_latency_json(table);
  write_file_atomically(path, std::vector<uint8_t>(text.begin(), text.end()));
  note(options, "latency table: " + path + " (" + table.target + ")");
  return path;
}

}  // namespace

FunnelTrainingResult train_funnel(const Dataset& data, const FunnelConfig& config, const FunnelTrainingOptions& options) {
  if (options.work_dir.empty()) throw ConfigError("train-funnel: a work folder is needed for the stage files");
  fs::create_directories(options.work_dir);
  const json sections = funnel_config_to_json(config);
  FunnelTrainingResult result;
  result.retrieval_file = (fs::path(options.work_dir) / "retrieval.funnel").string();
  result.ranking_file = (fs::path(options.work_dir) / "ranking.funnel").string();
  const std::string checkpoint = (fs::path(options.work_dir) / "retrieval.ckpt").string();
  const std::string teacher_cache = (fs::path(options.work_dir) / "ranking.teacher").string();
  const std::string ranking_checkpoint = (fs::path(options.work_dir) / "ranking.ckpt").string();
  if (!options.resume)
    for (const std::string& stale : {result.retrieval_file, result.ranking_file, checkpoint, teacher_cache, ranking_checkpoint})
      remove_with_record(stale);

  const Metadata funnel_metadata = {{"funnel_config", sections.dump()}};

  // 1. Retrieval.
  const std::string retrieval_record = stage_record(data, sections["retrieval"]);
  std::unique_ptr<Model> retrieval = options.resume ? reusable_stage(result.retrieval_file, retrieval_record) : nullptr;
  if (retrieval) {
    note(options, "retrieval: reusing " + result.retrieval_file + " (trained by the run being resumed)");
  } else {
    note(options, "retrieval: training the two-tower model");
    TrainOptions train;
    train.observer = options.retrieval;
    train.checkpoint = checkpoint;
    if (keep_for_resume(options, checkpoint, retrieval_record, "retrieval")) train.resume = checkpoint;
    train.metadata = funnel_metadata;
    train.metadata.push_back({kStageKey, retrieval_record});
    result.retrieval = std::make_unique<TrainResult>(train_two_tower(data, leave_last_out(data), config.retrieval, train));
    write_file_atomically(result.retrieval_file, result.retrieval->model_file);
    remove_with_record(checkpoint);
    retrieval = load_stage(result.retrieval_file, result.retrieval->model_file);
  }

  // 2. Ranking and pre-ranking: the CAN teacher, the AutoFAS search on it, the distilled student.
  const std::string ranking_record = stage_record(data, {{"ranking", sections["ranking"]}, {"pre_ranking", sections["pre_ranking"]}});
  std::unique_ptr<Model> ranking = options.resume ? reusable_stage(result.ranking_file, ranking_record) : nullptr;
  if (ranking) {
    note(options, "pre-ranking and ranking: reusing " + result.ranking_file + " (trained by the run being resumed)");
  } else {
    AutoFasConfig autofas = config.pre_ranking;
    if (autofas.teacher_cache.empty()) {
      autofas.teacher_cache = teacher_cache;  // ours: trained again when the ranking section changed
      keep_for_resume(options, teacher_cache, stage_record(data, sections["ranking"]), "ranking teacher");
    }
    result.latency_table = latency_table(autofas, options);
    autofas.latency_table = result.latency_table;
    const LatencyTable table = LatencyTable::load(autofas.latency_table);
    const CtrDataset ctr{data, build_ctr_instances(data, autofas.teacher.ctr_options())};
    note(options, "ranking: training the " + autofas.teacher.model + " teacher on " + std::to_string(ctr.instances.train.size()) +
                      " instances, then the AutoFAS pre-ranking student on it");
    Metadata metadata = funnel_metadata;
    metadata.push_back({kStageKey, ranking_record});
    AutoFasCheckpoints checkpoints;
    checkpoints.checkpoint = ranking_checkpoint;
    if (keep_for_resume(options, ranking_checkpoint, ranking_record, "ranking")) checkpoints.resume = ranking_checkpoint;
    checkpoints.on_note = options.on_note;
    result.pre_ranking = std::make_unique<AutoFasResult>(train_autofas(ctr, autofas, table, options.pre_ranking, metadata, checkpoints));
    result.pre_ranking_config = autofas;
    write_file_atomically(result.ranking_file, result.pre_ranking->model_file);
    remove_with_record(ranking_checkpoint);
    ranking = load_stage(result.ranking_file, result.pre_ranking->model_file);
  }

  // 3. One file.
  const BundlePart parts[] = {{result.retrieval_file, retrieval.get()}, {result.ranking_file, ranking.get()}};
  std::unique_ptr<Model> joined;
  if (Status s = Model::bundle(parts, &joined); !s) throw TrainingError("joining the stage files: " + s.to_string());
  const std::span<const uint8_t> bytes = joined->bytes();
  result.model_file.assign(bytes.begin(), bytes.end());
  return result;
}

}  // namespace funnel::train
