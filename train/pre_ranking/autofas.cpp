#include "train/pre_ranking/autofas.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>

#include "train/core/adam.hpp"
#include "train/core/config_io.hpp"
#include "train/ranking/ctr_losses.hpp"
#include "train/pre_ranking/distillation.hpp"
#include "train/core/errors.hpp"
#include "train/ranking/ranker_model.hpp"

namespace funnel::train {

namespace {

// Position of x among increasing knots: the segment [i, i + 1] to interpolate on and the weight of i + 1
// (outside the knots, the end segment, extrapolated).
std::pair<size_t, double> segment(const std::vector<double>& knots, double x) {
  if (knots.size() == 1) return {0, 0.0};
  size_t i = 0;
  while (i + 2 < knots.size() && x > knots[i + 1]) ++i;
  return {i, (x - knots[i]) / (knots[i + 1] - knots[i])};
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<double> softmax(const float* logits, size_t n) {
  const float largest = *std::max_element(logits, logits + n);
  std::vector<double> p(n);
  double sum = 0.0;
  for (size_t j = 0; j < n; ++j) sum += p[j] = std::exp(static_cast<double>(logits[j] - largest));
  for (double& v : p) v /= sum;
  return p;
}

// "user:age" -> {"user", "age"}.
std::pair<std::string, std::string> split_field(const std::string& field) {
  const size_t colon = field.find(':');
  return {field.substr(0, colon), field.substr(colon + 1)};
}

}  // namespace

// ---- the latency table ---------------------------------------------------------------------------------

LatencyTable LatencyTable::load(const std::string& path) { return from_json(config_io::parse_file(path), path); }

LatencyTable LatencyTable::from_json(const nlohmann::json& object, const std::string& where) {
  LatencyTable table;
  const auto fail = [&where](const std::string& message) { throw ConfigError(where + ": latency table: " + message); };
  try {
    table.target_ = object.value("target", std::string("unknown"));
    table.candidates_ = object.at("candidates").get<uint32_t>();
    table.inputs_ = object.at("inputs").get<std::vector<double>>();
    table.outputs_ = object.at("outputs").get<std::vector<double>>();
    table.microseconds_ = object.at("microseconds").get<std::vector<std::vector<double>>>();
  } catch (const nlohmann::json::exception& e) {
    fail(std::string("expected candidates, inputs, outputs and microseconds (") + e.what() + ")");
  }
  if (table.candidates_ == 0) fail("candidates must be positive");
  for (const auto* widths : {&table.inputs_, &table.outputs_}) {
    if (widths->empty()) fail("inputs and outputs must list widths");
    for (size_t i = 0; i < widths->size(); ++i)
      if (!((*widths)[i] >= 1) || (i > 0 && !((*widths)[i] > (*widths)[i - 1]))) fail("widths must be increasing and at least 1");
  }
  if (table.microseconds_.size() != table.inputs_.size()) fail("microseconds must have one row per input width");
  for (const auto& row : table.microseconds_) {
    if (row.size() != table.outputs_.size()) fail("every row of microseconds must have one value per output width");
    for (double t : row)
      if (!std::isfinite(t) || t < 0) fail("microseconds must be finite and not negative");
  }
  return table;
}

double LatencyTable::at(double a, double b) const {
  const auto [i, u] = segment(inputs_, a);
  const auto [j, v] = segment(outputs_, b);
  const auto value = [this](size_t r, size_t c) { return microseconds_[std::min(r, inputs_.size() - 1)][std::min(c, outputs_.size() - 1)]; };
  const double low = value(i, j) + v * (value(i, j + 1) - value(i, j));
  const double high = value(i + 1, j) + v * (value(i + 1, j + 1) - value(i + 1, j));
  return std::max(0.0, low + u * (high - low));
}

// ---- E[lat'] (the architecture's expected latency) -----------------------------------------------------

double expected_architecture_latency(const std::vector<std::vector<double>>& p, const Operators& operators, double input_width,
                                     const LatencyTable& table, std::vector<std::vector<double>>* gradient) {
  // The widths a Mixop can receive: the input's, and every dense operator's.
  std::vector<double> widths = {input_width};
  std::vector<size_t> slot(operators.size(), 0);
  for (size_t j = 0; j < operators.size(); ++j) {
    if (operators[j] == 0) continue;
    widths.push_back(operators[j]);
    slot[j] = widths.size() - 1;
  }
  const size_t layers = p.size(), s = widths.size();
  std::vector<std::vector<double>> q(layers + 1, std::vector<double>(s, 0.0));  // q[l]: the width Mixop l + 1 receives
  std::vector<std::vector<double>> cost(layers, std::vector<double>(operators.size(), 0.0));
  q[0][0] = 1.0;
  double total = 0.0;
  for (size_t l = 0; l < layers; ++l) {
    for (size_t j = 0; j < operators.size(); ++j) {
      if (operators[j] == 0) {
        for (size_t k = 0; k < s; ++k) q[l + 1][k] += p[l][j] * q[l][k];
        continue;
      }
      for (size_t k = 0; k < s; ++k) cost[l][j] += q[l][k] * table.at(widths[k], operators[j]);
      total += p[l][j] * cost[l][j];
      q[l + 1][slot[j]] += p[l][j];
    }
  }
  for (size_t k = 0; k < s; ++k) total += q[layers][k] * table.at(widths[k], 1);
  if (!gradient) return total;

  // Backwards: g[k] = d total / d q[l][k], starting from the output layer's cost.
  gradient->assign(layers, std::vector<double>(operators.size(), 0.0));
  std::vector<double> g(s), before(s);
  for (size_t k = 0; k < s; ++k) g[k] = table.at(widths[k], 1);
  for (size_t l = layers; l-- > 0;) {
    std::fill(before.begin(), before.end(), 0.0);
    for (size_t j = 0; j < operators.size(); ++j) {
      if (operators[j] == 0) {
        double passed = 0.0;
        for (size_t k = 0; k < s; ++k) {
          passed += g[k] * q[l][k];
          before[k] += p[l][j] * g[k];
        }
        (*gradient)[l][j] = passed;
        continue;
      }
      (*gradient)[l][j] = cost[l][j] + g[slot[j]];
      for (size_t k = 0; k < s; ++k) before[k] += p[l][j] * table.at(widths[k], operators[j]);
    }
    g.swap(before);
  }
  return total;
}

// ---- the supernet ----------------------------------------------------------------------------------------

Supernet::Supernet(size_t input_dim, uint32_t mixops, Operators operators, Rng& rng)
    : input_dim_(input_dim),
      width_(std::max<size_t>(input_dim, *std::max_element(operators.begin(), operators.end()))),
      mixops_(mixops),
      operators_(std::move(operators)),
      alpha_("autofas/alpha", {mixops, operators_.size()}) {
  // alpha starts at zero: every operator equally likely, as in DARTS.
  dense_.resize(mixops_);
  for (uint32_t l = 0; l < mixops_; ++l)
    for (size_t j = 0; j < operators_.size(); ++j) {
      const uint32_t w = std::max<uint32_t>(operators_[j], 1);  // the identity's entry is never used
      const std::string name = "autofas/mixop" + std::to_string(l) + "/op" + std::to_string(j);
      owned_.push_back(std::make_unique<Parameter>(name + "/weight", std::vector<uint64_t>{w, width_}));
      Parameter* weight = owned_.back().get();
      owned_.push_back(std::make_unique<Parameter>(name + "/bias", std::vector<uint64_t>{w}));
      dense_[l].emplace_back(weight, owned_.back().get());
      if (operators_[j] != 0) dense_[l].back().init(rng);
    }
  out_weight_ = std::make_unique<Parameter>("autofas/out/weight", std::vector<uint64_t>{1, width_});
  out_bias_ = std::make_unique<Parameter>("autofas/out/bias", std::vector<uint64_t>{1});
  out_ = std::make_unique<Linear>(out_weight_.get(), out_bias_.get());
  out_->init(rng);
}

std::vector<Parameter*> Supernet::weights() {
  std::vector<Parameter*> out;
  for (uint32_t l = 0; l < mixops_; ++l)
    for (size_t j = 0; j < operators_.size(); ++j)
      if (operators_[j] != 0) {
        out.push_back(owned_[2 * (l * operators_.size() + j)].get());
        out.push_back(owned_[2 * (l * operators_.size() + j) + 1].get());
      }
  out.push_back(out_weight_.get());
  out.push_back(out_bias_.get());
  return out;
}

std::vector<std::vector<double>> Supernet::probabilities() const {
  std::vector<std::vector<double>> p;
  for (uint32_t l = 0; l < mixops_; ++l) p.push_back(softmax(alpha_.value.data() + l * operators_.size(), operators_.size()));
  return p;
}

void Supernet::forward(const float* x, size_t batch, float* logits) {
  batch_ = batch;
  const size_t width = width_;
  h_.assign(mixops_ + 1, std::vector<float>(batch * width, 0.0f));
  for (size_t b = 0; b < batch; ++b) std::copy(x + b * input_dim_, x + (b + 1) * input_dim_, h_[0].data() + b * width);
  const std::vector<std::vector<double>> p = probabilities();
  y_.assign(mixops_, std::vector<std::vector<float>>(operators_.size()));
  for (uint32_t l = 0; l < mixops_; ++l) {
    std::vector<float>& next = h_[l + 1];
    for (size_t j = 0; j < operators_.size(); ++j) {
      const float weight = static_cast<float>(p[l][j]);
      if (operators_[j] == 0) {
        for (size_t i = 0; i < next.size(); ++i) next[i] += weight * h_[l][i];
        continue;
      }
      const size_t w = operators_[j];
      std::vector<float>& y = y_[l][j];
      y.resize(batch * w);
      dense_[l][j].forward(h_[l].data(), batch, y.data());
      relu_forward(y.data(), y.size(), y.data());
      for (size_t b = 0; b < batch; ++b)
        for (size_t k = 0; k < w; ++k) next[b * width + k] += weight * y[b * w + k];
    }
  }
  out_->forward(h_[mixops_].data(), batch, logits);
}

void Supernet::backward(std::span<const float> dlogits) {
  const size_t batch = batch_, width = width_;
  grad_.resize(batch * width);
  out_->backward(h_[mixops_].data(), dlogits.data(), batch, grad_.data());
  const std::vector<std::vector<double>> p = probabilities();
  std::vector<double> dp(operators_.size());
  std::vector<float> dx(batch * width);
  for (uint32_t l = mixops_; l-- > 0;) {
    grad_next_.assign(batch * width, 0.0f);
    for (size_t j = 0; j < operators_.size(); ++j) {
      const float weight = static_cast<float>(p[l][j]);
      double inner = 0.0;
      if (operators_[j] == 0) {
        for (size_t i = 0; i < grad_.size(); ++i) {
          inner += static_cast<double>(grad_[i]) * h_[l][i];
          grad_next_[i] += weight * grad_[i];
        }
        dp[j] = inner;
        continue;
      }
      const size_t w = operators_[j];
      const std::vector<float>& y = y_[l][j];
      grad_op_.resize(batch * w);
      for (size_t b = 0; b < batch; ++b)
        for (size_t k = 0; k < w; ++k) {
          const float g = grad_[b * width + k];
          inner += static_cast<double>(g) * y[b * w + k];
          grad_op_[b * w + k] = y[b * w + k] > 0.0f ? weight * g : 0.0f;
        }
      dp[j] = inner;
      // The first Mixop's input is the student's (constant) input: no input gradient needed there.
      dense_[l][j].backward(h_[l].data(), grad_op_.data(), batch, l > 0 ? dx.data() : nullptr);
      if (l > 0)
        for (size_t i = 0; i < dx.size(); ++i) grad_next_[i] += dx[i];
    }
    // Through the softmax: d alpha_k = p_k (dp_k - sum_j p_j dp_j).
    double mean = 0.0;
    for (size_t j = 0; j < operators_.size(); ++j) mean += p[l][j] * dp[j];
    for (size_t k = 0; k < operators_.size(); ++k)
      alpha_.grad[l * operators_.size() + k] += static_cast<float>(p[l][k] * (dp[k] - mean));
    grad_.swap(grad_next_);
  }
}

void Supernet::add_probability_gradient(const std::vector<std::vector<double>>& dp) {
  const std::vector<std::vector<double>> p = probabilities();
  for (uint32_t l = 0; l < mixops_; ++l) {
    double mean = 0.0;
    for (size_t j = 0; j < operators_.size(); ++j) mean += p[l][j] * dp[l][j];
    for (size_t k = 0; k < operators_.size(); ++k)
      alpha_.grad[l * operators_.size() + k] += static_cast<float>(p[l][k] * (dp[l][k] - mean));
  }
}

// ---- config --------------------------------------------------------------------------------------------

namespace {

template <typename Visit>
void for_each_search_field(AutoFasConfig& c, Visit&& visit) {
  visit("search_epochs", c.search_epochs);
  visit("search_fraction", c.search_fraction);
  visit("mixops", c.mixops);
  visit("operators", c.operators);
  visit("field_costs", c.field_costs);
  visit("default_field_cost", c.default_field_cost);
  visit("latency_table", c.latency_table);
  visit("lambda", c.lambda);
  visit("lambda1", c.lambda1);
  visit("lambda2", c.lambda2);
  visit("mask_learning_rate", c.mask_learning_rate);
  visit("architecture_learning_rate", c.architecture_learning_rate);
  visit("supernet_learning_rate", c.supernet_learning_rate);
  visit("mask_init", c.mask_init);
  visit("keep_threshold", c.keep_threshold);
  visit("student_epochs", c.student_epochs);
  visit("student_learning_rate", c.student_learning_rate);
  visit("student", c.student);
  visit("fixed_layers", c.fixed_layers);
  visit("two_tower_epochs", c.two_tower_epochs);
  visit("teacher_cache", c.teacher_cache);
}

}  // namespace

AutoFasConfig autofas_config_from_json(const nlohmann::json& object, const std::string& where) {
  config_io::check_known_keys(object, autofas_config_to_json(AutoFasConfig{}), where);
  const nlohmann::json teacher_defaults = ranker_config_to_json(RankerConfig{});
  nlohmann::json teacher = nlohmann::json::object();
  for (const auto& [key, value] : object.items())
    if (teacher_defaults.contains(key)) teacher[key] = value;
  AutoFasConfig c;
  c.teacher = ranker_config_from_json(teacher, where);
  for_each_search_field(c, [&](const char* key, auto& member) { config_io::read(object, key, &member, where); });
  const auto require = [&where](bool ok, const std::string& message) {
    if (!ok) throw ConfigError(where + ": " + message);
  };
  require(c.search_epochs >= 1, "search_epochs must be at least 1");
  require(c.search_fraction > 0 && c.search_fraction <= 1, "search_fraction must be in (0, 1]");
  require(c.mixops >= 1 && c.mixops <= 8, "mixops must be in 1..8");
  require(!c.operators.empty(), "operators must list at least one operator (0: the identity, w: a dense layer of w units)");
  require(std::count(c.operators.begin(), c.operators.end(), 0u) <= 1, "operators may list the identity (0) once");
  for (uint32_t w : c.operators) require(w <= 65536, "operator widths must be at most 65536");
  for (const auto& [field, cost] : c.field_costs) require(std::isfinite(cost) && cost >= 0, "field_costs['" + field + "'] must be a cost >= 0");
  require(c.default_field_cost >= 0, "default_field_cost must be >= 0");
  require(c.lambda >= 0 && c.lambda2 >= 0, "lambda and lambda2 must be >= 0");
  require(c.lambda1 >= 0 && c.lambda1 <= 1, "lambda1 must be in [0, 1]");
  require(c.mask_learning_rate > 0 && c.architecture_learning_rate > 0 && c.supernet_learning_rate > 0 && c.student_learning_rate > 0,
          "learning rates must be positive");
  require(c.mask_init > 0 && c.mask_init < 1, "mask_init must be in (0, 1)");
  require(c.keep_threshold > 0 && c.keep_threshold < 1, "keep_threshold must be in (0, 1)");
  require(c.student_epochs >= 1, "student_epochs must be at least 1");
  require(c.student == "search" || c.student == "fixed", "student must be 'search' (AutoFAS) or 'fixed' (the fixed_layers baseline)");
  for (uint32_t w : c.fixed_layers) require(w >= 1 && w <= 65536, "fixed_layers sizes must be in 1..65536");
  return c;
}

nlohmann::json autofas_config_to_json(const AutoFasConfig& config) {
  nlohmann::json out = ranker_config_to_json(config.teacher);
  AutoFasConfig copy = config;
  for_each_search_field(copy, [&out](const char* key, auto& member) {
    if constexpr (std::is_same_v<std::decay_t<decltype(member)>, std::map<std::string, float>>) {
      nlohmann::json costs = nlohmann::json::object();
      for (const auto& [field, cost] : member) costs[field] = config_io::tidy(cost);
      out[key] = costs;
    } else {
      out[key] = config_io::to_json_value(member);
    }
  });
  return out;
}

// ---- the search --------------------------------------------------------------------------------------------

namespace {

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
  const CtrInstances& instances = ctr.instances;
  const CtrSplit& train = instances.train;
  if (train.size() == 0) throw TrainingError("autofas: the data gives no training instances");
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
  const size_t n = std::max<size_t>(1, static_cast<size_t>(static_cast<double>(train.size()) * config.search_fraction));
  const size_t steps = (n + batch_size - 1) / batch_size;
  std::vector<uint32_t> order(train.size());
  std::vector<float> teacher_logits(batch_size), dteacher(batch_size), student_logits(batch_size), dstudent(batch_size), labels(batch_size),
      soft(batch_size), x(batch_size * student_dim), masks(fields);
  std::vector<double> theta(fields);
  std::vector<std::vector<double>> dlatency;
  for (uint32_t epoch = 1; epoch <= config.search_epochs; ++epoch) {
    std::iota(order.begin(), order.end(), 0u);
    rng.shuffle(order);
    double loss1_sum = 0, loss2_sum = 0, feature_latency = 0, architecture_latency = 0;
    for (size_t step = 0; step < steps; ++step) {
      const size_t begin = step * batch_size, end = std::min(n, begin + batch_size), b = end - begin;
      const std::span<const uint32_t> batch(order.data() + begin, b);
      for (size_t k = 0; k < b; ++k) labels[k] = train.label[batch[k]];

      // Loss1 (eq. 5): the teacher with sampled masks (eq. 1); only the masks learn.
      feature_latency = 0;
      for (size_t f = 0; f < fields; ++f) {
        theta[f] = sigmoid(mask_logits.value[f]);
        masks[f] = rng.uniform() < theta[f] ? 1.0f : 0.0f;
        feature_latency += theta[f] * search.field_costs[f];  // eq. 3-4
      }
      teacher.set_field_masks(masks);
      teacher.forward(instances, train, batch, teacher_logits.data());
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
