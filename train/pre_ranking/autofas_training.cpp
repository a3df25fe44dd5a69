#include "train/pre_ranking/autofas_training.hpp"

#include <omp.h>

#include <cmath>
#include <fstream>
#include <numeric>
#include <optional>

#include "train/core/atomic_file.hpp"
#include "train/core/errors.hpp"
#include "train/core/subnormals.hpp"
#include "train/core/training_state.hpp"
#include "train/data/ctr_stream.hpp"
#include "train/pre_ranking/distillation.hpp"

namespace funnel::train {

namespace {

using json = nlohmann::json;

// The trained teacher's click probability for every training instance, by id (ctr_stream.hpp: the index in
// memory, the row of the prepared shards when streamed, 4 bytes per instance either way): the student's
// distillation target.
std::vector<float> teacher_probabilities(RankerModel& teacher, const CtrDataset& ctr, const RankerConfig& config) {
  const uint32_t batch_size = config.batch_size;
  std::vector<float> out(train_instance_count(ctr)), logits(batch_size);
  std::vector<uint32_t> positions;
  ctr_batches(ctr, config.max_history)->for_each_in_order(batch_size, [&](const CtrBatch& batch) {
    positions.resize(batch.size());
    std::iota(positions.begin(), positions.end(), 0u);
    teacher.forward(batch.instances, batch.instances.train, positions, logits.data());
    for (size_t k = 0; k < batch.size(); ++k) out[batch.ids[k]] = 1.0f / (1.0f + std::exp(-logits[k]));
  });
  return out;
}

// The teacher cache: one JSON line (the teacher's config and test metrics), then every parameter's floats.
void save_teacher(const std::string& path, RankerModel& teacher, const RankerConfig& config, const CtrMetrics& test) {
  std::string bytes = json{{"ranking_config", ranker_config_to_json(config)}, {"test", ctr_metrics_json(test)}}.dump() + "\n";
  for (const Parameter* p : teacher.parameters())
    bytes.append(reinterpret_cast<const char*>(p->value.data()), p->value.size() * sizeof(float));
  write_file_atomically(path, std::vector<uint8_t>(bytes.begin(), bytes.end()));
}

// Fills `teacher` from the cache; false when the cache holds another config's teacher.
bool load_teacher(const std::string& path, RankerModel& teacher, const RankerConfig& config, CtrMetrics* test) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open the teacher cache");
  std::string header;
  std::getline(in, header);
  json meta;
  try {
    meta = json::parse(header);
  } catch (const json::parse_error& e) {
    throw DataError(path + ": not a teacher cache (" + e.what() + ")");
  }
  if (meta.at("ranking_config") != ranker_config_to_json(config)) return false;
  for (Parameter* p : teacher.parameters())
    if (!in.read(reinterpret_cast<char*>(p->value.data()), static_cast<std::streamsize>(p->value.size() * sizeof(float))))
      throw DataError(path + ": the teacher cache ends before parameter '" + p->name + "'");
  if (in.peek() != std::char_traits<char>::eof()) throw DataError(path + ": the teacher cache holds more than the teacher's parameters");
  *test = ctr_metrics_from_json(meta.at("test"));
  return true;
}

// The stages a checkpoint can stand at: inside the teacher's training, after it (the search comes next), or
// inside the student's training.
constexpr char kTeacherStage[] = "teacher", kSearchStage[] = "search", kStudentStage[] = "student";

// The stage of an AutoFAS checkpoint; refused, naming the field, when the file is another trainer's.
std::string checkpoint_stage(const Checkpoint& c) {
  const std::string& path = c.path;
  const auto identity = c.header.find("identity");
  if (identity == c.header.end() || !identity->contains("autofas.stage") || !identity->at("autofas.stage").is_string())
    throw TrainingError(path + ": the checkpoint was written for another run: its 'autofas.stage' is missing (not an autofas checkpoint)");
  return identity->at("autofas.stage").get<std::string>();
}

// What every stage's checkpoint must match beside the ranking run's own fields: the data, the teacher's
// config (its epochs too once it is trained), the search's (but file names and the student's epochs, which may grow) and the stage.
json autofas_identity(const CtrDataset& ctr, const AutoFasConfig& config, const std::string& stage) {
  json identity = ranker_identity(ctr, config.teacher, "teacher.");
  identity["autofas.stage"] = stage;
  // Past the teacher's training its epochs shaped the teacher the checkpoint holds: another count is
  // another teacher (inside its training they may grow, as any ranking run's).
  if (stage != kTeacherStage) identity["teacher.epochs"] = config.teacher.epochs;
  const json teacher_fields = ranker_config_to_json(config.teacher);
  const json fields = autofas_config_to_json(config);
  for (const auto& [field, value] : fields.items())
    if (!teacher_fields.contains(field) && field != "latency_table" && field != "teacher_cache" && field != "student_epochs" &&
        field != "two_tower_epochs")
      identity["autofas." + field] = value;
  return identity;
}

// The trained teacher, kept in the checkpoints after its training: its parameters and what is known of its run.
void register_teacher(TrainingState& state, RankerModel& teacher, RankerResult& result) {
  state.parameters(teacher.parameters(), "teacher/");
  state.add([&result](Checkpoint& c) { c.header["teacher_result"] = {{"best_epoch", result.best_epoch},
                                                                     {"validation", ctr_metrics_json(result.validation)},
                                                                     {"test", ctr_metrics_json(result.test)}}; },
            [&result](const Checkpoint& c) {
              const json& r = c.header.at("teacher_result");
              result.best_epoch = r.at("best_epoch");
              result.validation = ctr_metrics_from_json(r.at("validation"));
              result.test = ctr_metrics_from_json(r.at("test"));
            });
}

RankerObserver observer_for(const AutoFasObservers& observers, const std::string& what, uint32_t epochs) {
  return observers.training ? observers.training(what, epochs) : RankerObserver{};
}

}  // namespace

AutoFasResult train_autofas(const CtrDataset& ctr, const AutoFasConfig& config, const LatencyTable& table, const AutoFasObservers& observers,
                            const Metadata& metadata, const AutoFasCheckpoints& checkpoints) {
  // The search and the teacher's outputs run on these threads and rounding modes whichever stage a run
  // starts from, so that a resumed run computes what the uninterrupted one did.
  omp_set_num_threads(config.teacher.threads > 0 ? static_cast<int>(config.teacher.threads) : omp_get_num_procs());
  flush_subnormals_to_zero();
  AutoFasResult result;
  // The checkpoint is read once: its header says which stage to continue, the stage restores from it.
  std::optional<Checkpoint> resumed;
  if (!checkpoints.resume.empty()) resumed = load_checkpoint(checkpoints.resume);
  const std::string resumed_stage = resumed ? checkpoint_stage(*resumed) : "";
  if (!resumed_stage.empty() && resumed_stage != kTeacherStage && resumed_stage != kSearchStage && resumed_stage != kStudentStage)
    throw TrainingError(checkpoints.resume + ": the checkpoint's 'autofas.stage' is '" + resumed_stage + "', not teacher, search or student");
  // 1. The teacher: the ranking stage, trained first (or read from the cache or a checkpoint past its
  // training), frozen during the search.
  if (resumed_stage == kSearchStage || resumed_stage == kStudentStage) {
    result.teacher_model = std::make_unique<RankerModel>(ctr.data, config.teacher);
    TrainingState state(autofas_identity(ctr, config, resumed_stage));
    register_teacher(state, *result.teacher_model, result.teacher);
    state.restore(*resumed);
    if (checkpoints.on_note) checkpoints.on_note("autofas: the trained teacher read from " + checkpoints.resume);
  } else if (!config.teacher_cache.empty() && std::ifstream(config.teacher_cache).good()) {
    result.teacher_model = std::make_unique<RankerModel>(ctr.data, config.teacher);
    if (!load_teacher(config.teacher_cache, *result.teacher_model, config.teacher, &result.teacher.test))
      throw ConfigError(config.teacher_cache + ": the cached teacher was trained with another ranking config; remove the file or name another");
    result.teacher_from_cache = true;
  } else {
    RankerCheckpoints teacher_checkpoints{checkpoints.checkpoint, resumed_stage == kTeacherStage ? checkpoints.resume : "",
                                          autofas_identity(ctr, config, kTeacherStage), {}, checkpoints.on_note,
                                          resumed_stage == kTeacherStage ? &*resumed : nullptr};
    result.teacher = train_ranker(ctr, config.teacher, observer_for(observers, "teacher", config.teacher.epochs), {}, &result.teacher_model,
                                  teacher_checkpoints);
    if (!config.teacher_cache.empty()) save_teacher(config.teacher_cache, *result.teacher_model, config.teacher, result.teacher.test);
    if (!checkpoints.checkpoint.empty()) {
      TrainingState state(autofas_identity(ctr, config, kSearchStage));
      register_teacher(state, *result.teacher_model, result.teacher);
      state.save(checkpoints.checkpoint);
    }
  }
  RankerModel& teacher = *result.teacher_model;

  // 2. The search (or the fixed baseline).
  result.search = config.student == "search" ? autofas_search(teacher, ctr, config, table, observers.search) : fixed_student(teacher, config, table);

  // 3. The student, from scratch, distilled from the teacher.
  result.student_config = student_config(config, result.search);
  const std::vector<float> soft = teacher_probabilities(teacher, ctr, config.teacher);
  std::unique_ptr<RankerModel> student;
  RankerCheckpoints student_checkpoints{checkpoints.checkpoint, resumed_stage == kStudentStage ? checkpoints.resume : "",
                                        autofas_identity(ctr, config, kStudentStage),
                                        [&](TrainingState& state) { register_teacher(state, teacher, result.teacher); },
                                        checkpoints.on_note, resumed_stage == kStudentStage ? &*resumed : nullptr};
  result.student = train_ranker(ctr, result.student_config, observer_for(observers, "student", result.student_config.epochs),
                                distillation_term(soft, train_instance_count(ctr), result.student_config.distillation), &student,
                                student_checkpoints);

  // 4. One file, both stages; what was chosen and why in its metadata.
  Metadata all = {{"dataset", ctr.data.name},
                  {"stage", "pre_ranking+ranking"},
                  {"autofas_config", autofas_config_to_json(config).dump()},
                  {"ranking_config", ranker_config_to_json(config.teacher).dump()},
                  {"pre_ranking_config", ranker_config_to_json(result.student_config).dump()},
                  {"pre_ranking", result.search.to_json(config, table).dump()},
                  {"ranking_test", ctr_metrics_json(result.teacher.test).dump()},
                  {"pre_ranking_test", ctr_metrics_json(result.student.test).dump()}};
  all.insert(all.end(), metadata.begin(), metadata.end());
  result.model_file = export_funnel(ctr.data, nullptr, &teacher, student.get(), all);
  return result;
}

}  // namespace funnel::train
