// AutoFAS (Li et al., "AutoFAS: Automatic Feature and Architecture Selection for Pre-Ranking System",
// KDD 2021): the pre-ranking student is searched for on a trained ranking teacher.
//  - Feature masks (eq. 1): per input field f of the teacher a Bernoulli mask m_f ~ B(theta_f), sampled per
//    batch, multiplies the field's embeddings; theta_f = sigmoid(phi_f) is learned through the sample.
//  - The supernet (eq. 2): L Mixops, each a softmax(alpha)-weighted sum of candidate operators (the identity
//    and dense layers of several widths), on the teacher's masked embeddings.
//  - Latency (eq. 3-4): E[lat] = sum_f theta_f L_f from per-field fetch costs; E[lat'] of the architecture,
//    recursive over the Mixops, from a table T[a x b] of dense-layer latencies measured by the SDK on the
//    deployment target (funnel bench-layers, natively or in WASM).
//  - Losses (eq. 5-8): Loss1 = L_rank + lambda E[lat] updates the masks; Loss2 = (1 - lambda1) L_pre +
//    lambda1 ||r(x) - p(x)||^2 + lambda2 E[lat'] updates alpha and the supernet's weights. The two are
//    blocked from each other: r(x) is a constant to Loss2, and the student's input is a copy.
//  - Derive: keep the fields with theta_f >= 0.5 and each Mixop's strongest operator, retrain that
//    student from scratch with distillation, export it as the pre-ranking stage.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/data/ctr_data.hpp"
#include "train/core/layers.hpp"
#include "train/core/parameter.hpp"
#include "train/ranking/ranker_config.hpp"
#include "train/core/rng.hpp"

namespace funnel::train {

class RankerModel;

// T[a x b]: microseconds of one dense layer from a to b units (PReLU after it when b > 1) over `candidates`
// rows, as `funnel bench-layers` (or the WASM module's benchLayers) measured it on the deployment target.
class LatencyTable {
 public:
  static LatencyTable load(const std::string& path);
  static LatencyTable from_json(const nlohmann::json& object, const std::string& where);

  // Linear interpolation between measured widths (and linear extrapolation past the ends, where a layer's
  // cost keeps growing with its width); a in units of input width, b of output width.
  double at(double a, double b) const;
  const std::string& target() const { return target_; }
  uint32_t candidates() const { return candidates_; }

 private:
  std::string target_;
  uint32_t candidates_ = 0;
  std::vector<double> inputs_, outputs_;
  std::vector<std::vector<double>> microseconds_;  // [inputs][outputs]
};

// A Mixop's candidate operators: 0 is the identity (the layer disappears), w > 0 a dense layer of w units.
using Operators = std::vector<uint32_t>;

// E[lat'] of the supernet (AutoFAS's recursive expected latency): the input width is `input_width`; a
// Mixop chooses operator j with probability p[l][j]; a dense operator costs T[a x w] for the width a it
// receives and passes w on, the identity costs nothing and passes a on; the output layer costs T[a x 1].
// The width a Mixop receives is itself random, so the expectation is carried as a distribution over
// widths. `gradient`, when given, receives d E[lat'] / d p[l][j].
double expected_architecture_latency(const std::vector<std::vector<double>>& p, const Operators& operators, double input_width,
                                     const LatencyTable& table, std::vector<std::vector<double>>* gradient = nullptr);

// The over-parameterised student: input [batch, input_dim] zero-padded to `width` = max(input_dim, the
// largest operator), L Mixops whose dense operators read the `width` floats and write theirs padded to
// `width` (the paper's zero padding), then one output logit. Dense operators use ReLU.
class Supernet {
 public:
  Supernet(size_t input_dim, uint32_t mixops, Operators operators, Rng& rng);
  Supernet(const Supernet&) = delete;
  Supernet& operator=(const Supernet&) = delete;

  void forward(const float* x, size_t batch, float* logits);
  // From d loss / d logit: accumulates every weight's and every alpha's gradient.
  void backward(std::span<const float> dlogits);

  // softmax(alpha) per Mixop.
  std::vector<std::vector<double>> probabilities() const;
  // Adds d loss / d p (e.g. lambda2 d E[lat'] / d p) into alpha's gradient through the softmax.
  void add_probability_gradient(const std::vector<std::vector<double>>& dp);
  Parameter& alpha() { return alpha_; }
  std::vector<Parameter*> weights();
  const Operators& operators() const { return operators_; }
  uint32_t mixops() const { return mixops_; }
  size_t input_dim() const { return input_dim_; }

 private:
  size_t input_dim_, width_;
  uint32_t mixops_;
  Operators operators_;
  Parameter alpha_;                                 // [mixops, operators]
  std::vector<std::unique_ptr<Parameter>> owned_;
  std::vector<std::vector<Linear>> dense_;          // [mixop][operator]; unused for the identity
  std::unique_ptr<Parameter> out_weight_, out_bias_;
  std::unique_ptr<Linear> out_;
  // The last forward: each Mixop's input, each dense operator's output (after ReLU), the last output.
  size_t batch_ = 0;
  std::vector<std::vector<float>> h_;                // [mixops + 1][batch, width]
  std::vector<std::vector<std::vector<float>>> y_;   // [mixop][operator][batch, w]
  std::vector<float> grad_, grad_next_, grad_op_;
};

struct AutoFasConfig {
  RankerConfig teacher;  // the ranking teacher (trained first, then frozen) and the data protocol

  // Search.
  uint32_t search_epochs = 1;
  float search_fraction = 1.0f;  // share of the training instances each search epoch visits (seeded draw)
  uint32_t mixops = 3;
  Operators operators = {0, 32, 64, 128, 256, 512};
  // Per-field fetch cost L_f in microseconds per latency-table batch of candidates ("candidate:item_id",
  // "behaviours:category", "user:age"...); fields not listed cost default_field_cost.
  std::map<std::string, float> field_costs;
  float default_field_cost = 10.0f;
  std::string latency_table;  // path of a bench-layers JSON file; required
  float lambda = 1e-3f;       // eq. 5: weight of E[lat] in Loss1, per microsecond
  float lambda1 = 0.5f;       // eq. 6: weight of the distillation term
  float lambda2 = 1e-4f;      // eq. 6: weight of E[lat'] in Loss2, per microsecond
  float mask_learning_rate = 0.05f;
  float architecture_learning_rate = 0.01f;
  float supernet_learning_rate = 1e-3f;
  float mask_init = 0.9f;     // theta_f at the start of the search
  float keep_threshold = 0.5f;

  // The derived student, retrained from scratch with distillation (lambda1).
  uint32_t student_epochs = 3;
  float student_learning_rate = 1e-3f;

  // Baselines for the study: "search" (AutoFAS), or "fixed": every field the student can read, through
  // fixed_layers, with no search. two_tower_epochs > 0 also trains a two-tower dot-product model (the
  // retrieval trainer, defaults otherwise) on the same data and measures it as a pre-ranker beside.
  std::string student = "search";
  std::vector<uint32_t> fixed_layers = {32};
  uint32_t two_tower_epochs = 0;
  // A file keeping the trained teacher, so that runs which differ only in the search share one teacher:
  // written after training when absent, read (and checked against the teacher's config) when present.
  std::string teacher_cache;
};

// The config as JSON: the teacher's fields (ranker_config.hpp) and the search's, side by side.
AutoFasConfig autofas_config_from_json(const nlohmann::json& object, const std::string& where);
nlohmann::json autofas_config_to_json(const AutoFasConfig& config);

struct AutoFasObserver {
  // Every few steps of the search: epoch, step, steps per epoch, Loss1, Loss2, E[lat], E[lat'].
  std::function<void(uint32_t, size_t, size_t, double, double, double, double)> on_progress;
};

struct AutoFasSearch {
  std::vector<std::string> fields;
  std::vector<float> field_costs;
  std::vector<double> theta;                        // final keep probabilities
  std::vector<bool> kept;
  std::vector<std::vector<double>> probabilities;   // per Mixop, per operator
  std::vector<uint32_t> layers;                     // the student's hidden widths (identities dropped)
  double feature_latency = 0;                       // sum of the kept fields' costs
  double architecture_latency = 0;                  // T of the student's layers and its output layer
  double input_width = 0;                           // the student's input width
  std::vector<nlohmann::json> history;              // per epoch: losses, theta, probabilities
  nlohmann::json to_json(const AutoFasConfig& config, const LatencyTable& table) const;
};

// Runs the search on a trained teacher (which it leaves unchanged).
AutoFasSearch autofas_search(RankerModel& teacher, const CtrDataset& ctr, const AutoFasConfig& config, const LatencyTable& table,
                             const AutoFasObserver& observer = {});

// The "fixed" baseline's search result: every student field kept, config.fixed_layers, no search run.
AutoFasSearch fixed_student(RankerModel& teacher, const AutoFasConfig& config, const LatencyTable& table);

// The derived student's config: the kept fields (a candidate field at least: without one every item would
// score alike), the chosen widths, the teacher's embedding size and history, distillation lambda1.
RankerConfig student_config(const AutoFasConfig& config, const AutoFasSearch& search);

}  // namespace funnel::train
