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
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/data/ctr_data.hpp"
#include "train/pre_ranking/autofas_config.hpp"
#include "train/pre_ranking/latency.hpp"
#include "train/pre_ranking/supernet.hpp"
#include "train/ranking/ranker_config.hpp"

namespace funnel::train {

class RankerModel;

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
