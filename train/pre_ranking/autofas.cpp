#include "train/pre_ranking/autofas.hpp"

#include "train/data/ctr_stream.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "train/core/adam.hpp"
#include "train/ranking/ctr_losses.hpp"
#include "train/pre_ranking/distillation.hpp"
#include "train/core/errors.hpp"
#include "train/ranking/ranker_model.hpp"

namespace funnel::train {

namespace {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// "user:age" -> {"user", "age"}.
std::pair<std::string, std::string> split_field(const std::string& field) {
  const size_t colon = field.find(':');
  return {field.substr(0, colon), field.substr(colon + 1)};
}

// L_f per field: the config's, or its default; a cost for a field the teacher lacks is a config error.
std::vector<float> field_costs(const std::vector<std::string>& fields, const AutoFasConfig& config) {
  for (const auto& [field, cost] : config.field_costs)
    if (std::find(fields.begin(), fields.end(), field) == fields.end()) {
      std::string known;
      for (const std::string& name : fields) known += (known.empty() ? "" : ", ") + name;
      throw ConfigError("autofas: field_costs names '" + field + "', which is no input field of the teacher; its fields are: " + known);
    }
  std::vector<float> costs;
  for (const std::string& field : fields) {
    const auto it = config.field_costs.find(field);
    costs.push_back(it == config.field_costs.end() ? config.default_field_cost : it->second);
  }
  return costs;
}

// The student's predicted latency on the target's table: the fields it reads, then its layers.
void predict_latency(const RankerModel& teacher, const LatencyTable& table, AutoFasSearch* search) {
  std::vector<bool> read(search->fields.size(), false);
  for (const RankerModel::InputSpan& span : teacher.input_spans())
    if (span.offset < teacher.student_input_dim() && search->kept[span.fields[0]]) {
      search->input_width += static_cast<double>(span.width);
      read[span.fields[0]] = true;
    }
  for (size_t f = 0; f < read.size(); ++f)
    if (read[f]) search->feature_latency += search->field_costs[f];
  double a = search->input_width;
  for (uint32_t w : search->layers) {
    search->architecture_latency += table.at(a, w);
    a = w;
  }
  search->architecture_latency += table.at(a, 1);
}

}  // namespace

nlohmann::json AutoFasSearch::to_json(const AutoFasConfig& config, const LatencyTable& table) const {
  nlohmann::json field_list = nlohmann::json::array();
  for (size_t f = 0; f < fields.size(); ++f)
    field_list.push_back({{"name", fields[f]}, {"theta", theta[f]}, {"cost_us", field_costs[f]}, {"kept", static_cast<bool>(kept[f])}});
  nlohmann::json mixop_list = nlohmann::json::array();
  for (const auto& p : probabilities) mixop_list.push_back({{"operators", config.operators}, {"probabilities", p}});
  std::vector<std::string> features;
  for (size_t f = 0; f < fields.size(); ++f)
    if (kept[f]) features.push_back(fields[f]);
  // Latencies in the table's units (per `candidates` rows), and per 1,000 candidates for comparison.
  const double per_1000 = 1000.0 / table.candidates();
  return {{"method", config.student == "search" ? "autofas" : "fixed"},
          {"latency_target", table.target()},
          {"latency_candidates", table.candidates()},
          {"fields", field_list},
          {"features", features},
          {"mixops", mixop_list},
          {"layers", layers},
          {"input_width", input_width},
          {"feature_us", feature_latency},
          {"architecture_us", architecture_latency},
          {"predicted_us_per_1000", (feature_latency + architecture_latency) * per_1000},
          {"lambda", config.lambda},
          {"lambda1", config.lambda1},
          {"lambda2", config.lambda2},
          {"history", history}};
}

AutoFasSearch autofas_search(RankerModel& teacher, const CtrDataset& ctr, const AutoFasConfig& config, const LatencyTable& table,
                             const AutoFasObserver& observer) {
  const uint64_t train_size = train_instance_count(ctr);
  if (train_size == 0) throw TrainingError("autofas: the data gives no training instances");
  AutoFasSearch search;
  search.fields = teacher.field_names();
  const size_t fields = search.fields.size();
  search.field_costs = field_costs(search.fields, config);

  Rng rng(Rng(config.teacher.seed ^ 0xA5F0A5F0ull).next());
  Parameter mask_logits("autofas/mask_logits", {fields});
  std::fill(mask_logits.value.begin(), mask_logits.value.end(), static_cast<float>(std::log(config.mask_init / (1 - config.mask_init))));
  const size_t student_dim = teacher.student_input_dim();
  Supernet net(student_dim, config.mixops, config.operators, rng);
  AdamOptions options;
  options.learning_rate = config.mask_learning_rate;
  Adam mask_adam({&mask_logits}, options);
  options.learning_rate = config.architecture_learning_rate;
  Adam architecture_adam({&net.alpha()}, options);
  options.learning_rate = config.supernet_learning_rate;
  Adam weight_adam(net.weights(), options);

  // The student reads the embedding spans (one field each); its expected input width follows the masks.
  std::vector<std::pair<size_t, uint32_t>> student_spans;  // width, field
  for (const RankerModel::InputSpan& span : teacher.input_spans())
    if (span.offset < student_dim) student_spans.emplace_back(span.width, span.fields[0]);

  const size_t width = teacher.view().input_dim();
  const size_t batch_size = config.teacher.batch_size;
  const size_t n = std::max<size_t>(1, static_cast<size_t>(static_cast<double>(train_size) * config.search_fraction));
  const size_t steps = (n + batch_size - 1) / batch_size;
  // The first search_fraction of each epoch's order (ctr_stream.hpp: in memory or streamed).
  const std::unique_ptr<CtrBatches> source = ctr_batches(ctr, config.teacher.max_history);
  CtrBatch batch_data;
  std::vector<uint32_t> positions;
  std::vector<float> teacher_logits(batch_size), dteacher(batch_size), student_logits(batch_size), dstudent(batch_size), labels(batch_size),
      soft(batch_size), x(batch_size * student_dim), masks(fields);
  std::vector<double> theta(fields);
  std::vector<std::vector<double>> dlatency;
  for (uint32_t epoch = 1; epoch <= config.search_epochs; ++epoch) {
    source->start_epoch(rng);
    double loss1_sum = 0, loss2_sum = 0, feature_latency = 0, architecture_latency = 0;
    for (size_t step = 0; step < steps; ++step) {
      const size_t begin = step * batch_size, b = source->next(std::min(n, begin + batch_size) - begin, &batch_data);
      const CtrSplit& train = batch_data.instances.train;
      positions.resize(b);
      std::iota(positions.begin(), positions.end(), 0u);
      const std::span<const uint32_t> batch(positions);
      for (size_t k = 0; k < b; ++k) labels[k] = train.label[batch[k]];

      // Loss1 (eq. 5): the teacher with sampled masks (eq. 1); only the masks learn.
      feature_latency = 0;
      for (size_t f = 0; f < fields; ++f) {
        theta[f] = sigmoid(mask_logits.value[f]);
        masks[f] = rng.uniform() < theta[f] ? 1.0f : 0.0f;
        feature_latency += theta[f] * search.field_costs[f];  // eq. 3-4
      }
      teacher.set_field_masks(masks);
      teacher.forward(batch_data.instances, train, batch, teacher_logits.data());
      const float rank_loss = bce_loss({teacher_logits.data(), b}, {labels.data(), b}, {dteacher.data(), b});
      teacher.backward({dteacher.data(), b}, false);
      // Straight-through estimator: the sample's gradient d loss / d m_f stands for d loss / d theta_f (the
      // sample is theta_f in expectation); BinaryConnect's and ProxylessNAS's choice, unbiased enough to rank
      // the fields and free of a second forward pass. Then through theta = sigmoid(phi).
      const std::vector<double>& dmask = teacher.field_mask_gradients();
      for (size_t f = 0; f < fields; ++f)
        mask_logits.grad[f] = static_cast<float>((dmask[f] + config.lambda * search.field_costs[f]) * theta[f] * (1 - theta[f]));
      mask_adam.step();

      // Loss2 (eq. 6): the supernet on a copy of the masked embeddings (no gradient reaches the teacher),
      // distilled from the teacher's click probabilities r(x), a constant here.
      const std::vector<float>& inputs = teacher.inputs();
      for (size_t k = 0; k < b; ++k) {
        std::copy(inputs.begin() + static_cast<std::ptrdiff_t>(k * width), inputs.begin() + static_cast<std::ptrdiff_t>(k * width + student_dim),
                  x.begin() + static_cast<std::ptrdiff_t>(k * student_dim));
        soft[k] = static_cast<float>(sigmoid(teacher_logits[k]));
      }
      net.forward(x.data(), b, student_logits.data());
      float loss2 = bce_loss({student_logits.data(), b}, {labels.data(), b}, {dstudent.data(), b});
      loss2 = distill({student_logits.data(), b}, {soft.data(), b}, config.lambda1, loss2, {dstudent.data(), b});
      net.backward({dstudent.data(), b});
      double input_width = 0;
      for (const auto& [span_width, field] : student_spans) input_width += theta[field] * static_cast<double>(span_width);
      architecture_latency = expected_architecture_latency(net.probabilities(), config.operators, input_width, table, &dlatency);
      for (auto& row : dlatency)
        for (double& g : row) g *= config.lambda2;
      net.add_probability_gradient(dlatency);
      architecture_adam.step();
      weight_adam.step();

      const double loss1 = rank_loss + config.lambda * feature_latency;
      loss2 += static_cast<float>(config.lambda2 * architecture_latency);
      if (!std::isfinite(loss1) || !std::isfinite(loss2))
        throw TrainingError("autofas: the search's loss became not finite at epoch " + std::to_string(epoch) + ", step " +
                            std::to_string(step + 1) + " (Loss1 " + std::to_string(loss1) + ", Loss2 " + std::to_string(loss2) + ")");
      loss1_sum += loss1;
      loss2_sum += loss2;
      if (observer.on_progress && ((step + 1) % 50 == 0 || step + 1 == steps))
        observer.on_progress(epoch, step + 1, steps, loss1_sum / static_cast<double>(step + 1), loss2_sum / static_cast<double>(step + 1),
                             feature_latency, architecture_latency);
    }
    nlohmann::json record = {{"epoch", epoch},
                             {"loss1", loss1_sum / static_cast<double>(steps)},
                             {"loss2", loss2_sum / static_cast<double>(steps)},
                             {"expected_feature_us", feature_latency},
                             {"expected_architecture_us", architecture_latency}};
    for (size_t f = 0; f < fields; ++f) record["theta"][search.fields[f]] = sigmoid(mask_logits.value[f]);
    record["probabilities"] = net.probabilities();
    search.history.push_back(record);
  }
  teacher.set_field_masks({});

  // Derive: the fields worth their cost, each Mixop's strongest operator.
  search.theta.resize(fields);
  search.kept.assign(fields, false);
  for (size_t f = 0; f < fields; ++f) {
    search.theta[f] = sigmoid(mask_logits.value[f]);
    search.kept[f] = search.theta[f] >= config.keep_threshold;
  }
  // A student must see the candidate: keep the strongest candidate field if the masks dropped them all.
  int best_candidate = -1;
  bool any_candidate = false;
  for (size_t f = 0; f < fields; ++f) {
    if (split_field(search.fields[f]).first != "candidate") continue;
    any_candidate = any_candidate || search.kept[f];
    if (best_candidate < 0 || search.theta[f] > search.theta[static_cast<size_t>(best_candidate)]) best_candidate = static_cast<int>(f);
  }
  if (!any_candidate && best_candidate >= 0) search.kept[static_cast<size_t>(best_candidate)] = true;
  search.probabilities = net.probabilities();
  for (const auto& p : search.probabilities) {
    const size_t j = static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
    if (config.operators[j] != 0) search.layers.push_back(config.operators[j]);
  }
  predict_latency(teacher, table, &search);
  return search;
}

AutoFasSearch fixed_student(RankerModel& teacher, const AutoFasConfig& config, const LatencyTable& table) {
  AutoFasSearch search;
  search.fields = teacher.field_names();
  search.field_costs = field_costs(search.fields, config);
  search.theta.assign(search.fields.size(), 1.0);
  search.kept.assign(search.fields.size(), true);
  search.layers = config.fixed_layers;
  predict_latency(teacher, table, &search);
  return search;
}

RankerConfig student_config(const AutoFasConfig& config, const AutoFasSearch& search) {
  RankerConfig student = config.teacher;
  student.model = "dnn";
  student.coaction.clear();
  student.user_features.clear();
  student.item_features.clear();
  student.behaviour_features.clear();
  for (size_t f = 0; f < search.fields.size(); ++f) {
    if (!search.kept[f]) continue;
    const auto [kind, name] = split_field(search.fields[f]);
    // A user field that only fed a co-action pair is no student input.
    if (kind == "user" && std::find(config.teacher.user_features.begin(), config.teacher.user_features.end(), name) != config.teacher.user_features.end())
      student.user_features.push_back(name);
    else if (kind == "candidate") student.item_features.push_back(name);
    else if (kind == "behaviours") student.behaviour_features.push_back(name);
  }
  student.hidden = search.layers;
  student.epochs = config.student_epochs;
  student.learning_rate = config.student_learning_rate;
  student.loss = "bce";
  student.distillation = config.lambda1;
  return student;
}

}  // namespace funnel::train
