#include "train/pre_ranking/autofas_training.hpp"

#include <cmath>
#include <fstream>

#include "train/core/atomic_file.hpp"
#include "train/core/errors.hpp"
#include "train/pre_ranking/distillation.hpp"

namespace funnel::train {

namespace {

using json = nlohmann::json;

// The trained teacher's click probability for every training instance: the student's distillation target.
std::vector<float> teacher_probabilities(RankerModel& teacher, const CtrInstances& instances, uint32_t batch_size) {
  const CtrSplit& train = instances.train;
  std::vector<float> out(train.size());
  std::vector<uint32_t> batch;
  for (size_t begin = 0; begin < train.size(); begin += batch_size) {
    const size_t end = std::min(train.size(), begin + batch_size);
    batch.resize(end - begin);
    for (size_t k = 0; k < batch.size(); ++k) batch[k] = static_cast<uint32_t>(begin + k);
    teacher.forward(instances, train, batch, out.data() + begin);
  }
  for (float& p : out) p = 1.0f / (1.0f + std::exp(-p));
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
  const json& m = meta.at("test");
  test->auc = m.at("auc");
  test->gauc = m.at("gauc");
  test->logloss = m.at("logloss");
  test->instances = m.at("instances");
  return true;
}

RankerObserver observer_for(const AutoFasObservers& observers, const std::string& what, uint32_t epochs) {
  return observers.training ? observers.training(what, epochs) : RankerObserver{};
}

}  // namespace

json ctr_metrics_json(const CtrMetrics& m) { return {{"auc", m.auc}, {"gauc", m.gauc}, {"logloss", m.logloss}, {"instances", m.instances}}; }

AutoFasResult train_autofas(const CtrDataset& ctr, const AutoFasConfig& config, const LatencyTable& table, const AutoFasObservers& observers,
                            const Metadata& metadata) {
  AutoFasResult result;
  // 1. The teacher: the ranking stage, trained first (or read from the cache), frozen during the search.
  if (!config.teacher_cache.empty() && std::ifstream(config.teacher_cache).good()) {
    result.teacher_model = std::make_unique<RankerModel>(ctr.data, config.teacher);
    if (!load_teacher(config.teacher_cache, *result.teacher_model, config.teacher, &result.teacher.test))
      throw ConfigError(config.teacher_cache + ": the cached teacher was trained with another ranking config; remove the file or name another");
    result.teacher_from_cache = true;
  } else {
    result.teacher =
        train_ranker(ctr, config.teacher, observer_for(observers, "teacher", config.teacher.epochs), {}, &result.teacher_model);
    if (!config.teacher_cache.empty()) save_teacher(config.teacher_cache, *result.teacher_model, config.teacher, result.teacher.test);
  }
  RankerModel& teacher = *result.teacher_model;

  // 2. The search (or the fixed baseline).
  result.search = config.student == "search" ? autofas_search(teacher, ctr, config, table, observers.search) : fixed_student(teacher, config, table);

  // 3. The student, from scratch, distilled from the teacher.
  result.student_config = student_config(config, result.search);
  const std::vector<float> soft = teacher_probabilities(teacher, ctr.instances, config.teacher.batch_size);
  std::unique_ptr<RankerModel> student;
  result.student = train_ranker(ctr, result.student_config, observer_for(observers, "student", result.student_config.epochs),
                                distillation_term(soft, ctr.instances.train.size(), result.student_config.distillation), &student);

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
