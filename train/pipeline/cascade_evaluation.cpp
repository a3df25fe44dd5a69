#include "train/pipeline/cascade_evaluation.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "train/core/errors.hpp"

namespace funnel::train {

namespace {

// Each user's history in time order (ties by item row, as leave_last_out orders them), the validation
// item last when the test item is held out: the behaviour sequence and the items never to return.
std::vector<std::vector<std::string>> histories(const Dataset& data, const Split& split, Holdout holdout) {
  std::vector<std::vector<const Interaction*>> by_user(data.users.size());
  for (const Interaction& x : split.train) by_user[x.user].push_back(&x);
  std::vector<std::vector<std::string>> out(data.users.size());
  for (size_t u = 0; u < by_user.size(); ++u) {
    std::stable_sort(by_user[u].begin(), by_user[u].end(), [](const Interaction* a, const Interaction* b) {
      return a->timestamp != b->timestamp ? a->timestamp < b->timestamp : a->item < b->item;
    });
    for (const Interaction* x : by_user[u]) out[u].push_back(data.items.keys[x->item]);
    if (holdout == Holdout::kTest && split.validation_item[u] >= 0) out[u].push_back(data.items.keys[static_cast<size_t>(split.validation_item[u])]);
  }
  return out;
}

// The users with a held-out item.
std::vector<size_t> held_out_users(const Dataset& data, const Split& split, Holdout holdout) {
  std::vector<size_t> users;
  for (size_t u = 0; u < data.users.size(); ++u)
    if ((holdout == Holdout::kTest ? split.test_item[u] : split.validation_item[u]) >= 0) users.push_back(u);
  return users;
}

const std::string& held_key(const Dataset& data, const Split& split, Holdout holdout, size_t user) {
  return data.items.keys[static_cast<size_t>(holdout == Holdout::kTest ? split.test_item[user] : split.validation_item[user])];
}

}  // namespace

std::string cascade_requests_jsonl(const Dataset& data, const Split& split, Holdout holdout) {
  const std::vector<std::vector<std::string>> history = histories(data, split, holdout);
  std::string out;
  for (size_t u : held_out_users(data, split, holdout)) {
    nlohmann::json user = nlohmann::json::object();
    for (const auto& [name, value] : data.users.raw[u].entries()) {
      if (value.type() == FeatureValue::Type::kNumber) user[name] = value.number_value();
      else if (value.type() == FeatureValue::Type::kList) user[name] = value.list_value();
      else user[name] = value.string_value();
    }
    out += nlohmann::json{{"user", user}, {"behaviours", history[u]}, {"held", held_key(data, split, holdout, u)}}.dump() + "\n";
  }
  return out;
}

nlohmann::json CascadeRow::to_json() const {
  return {{"stages", stages},       {"retrieve_k", retrieve_k},   {"prerank_k", prerank_k},   {"k", k},
          {"users", users},         {"recall", recall},           {"ndcg", ndcg},             {"hit_rate", hit_rate},
          {"retrieval_ms", retrieval_ms}, {"pre_ranking_ms", pre_ranking_ms}, {"ranking_ms", ranking_ms}, {"total_ms", total_ms}};
}

std::vector<CascadeRow> evaluate_cascade(const Model& model, const Dataset& data, const Split& split, Holdout holdout, const CascadeGrid& grid) {
  if (!model.has_retrieval()) throw TrainingError("evaluating a cascade needs a retrieval stage");
  std::vector<CascadeRow> rows;
  rows.push_back({"retrieval", 0, 0, grid.k});
  for (size_t k1 : grid.retrieve_k) {
    if (model.has_ranking()) rows.push_back({"retrieval+ranking", k1, 0, grid.k});
    if (model.has_pre_ranking() && model.has_ranking())
      for (size_t k2 : grid.prerank_k)
        if (k2 < k1) rows.push_back({"retrieval+pre_ranking+ranking", k1, k2, grid.k});
  }
  const std::vector<std::vector<std::string>> history = histories(data, split, holdout);
  const std::vector<size_t> users = held_out_users(data, split, holdout);

  for (CascadeRow& row : rows) {
    CascadeOptions options;
    options.k = grid.k;
    options.retrieve_k = std::max<size_t>(row.retrieve_k, grid.k);
    options.prerank_k = std::max<size_t>(row.prerank_k, grid.k);
    options.skip_ranking = row.stages == "retrieval";
    options.skip_pre_ranking = row.stages != "retrieval+pre_ranking+ranking";
    // Per-user results, reduced in user order afterwards, so the metrics do not depend on the thread count.
    std::vector<double> ndcg(users.size(), 0.0), hit(users.size(), 0.0);
    std::vector<double> retrieval_ms(users.size()), pre_ranking_ms(users.size()), ranking_ms(users.size()), total_ms(users.size());
    std::string failure;
#pragma omp parallel num_threads(grid.threads > 0 ? static_cast<int>(grid.threads) : omp_get_num_procs())
    {
      CascadeOptions mine = options;
      CascadeResult result;
#pragma omp for schedule(dynamic, 16)
      for (size_t i = 0; i < users.size(); ++i) {
        const size_t u = users[i];
        mine.behaviours = history[u];
        mine.exclude = history[u];
        if (Status s = model.recommend(data.users.raw[u], mine, &result); !s) {
#pragma omp critical
          failure = "user '" + data.users.keys[u] + "': " + s.to_string();
          continue;
        }
        const std::string& held = held_key(data, split, holdout, u);
        for (size_t p = 0; p < result.items.size(); ++p)
          if (result.items[p].key == held) {
            hit[i] = 1.0;
            ndcg[i] = 1.0 / std::log2(static_cast<double>(p) + 2.0);
            break;
          }
        for (const StageReport& stage : result.stages) {
          if (stage.stage == "retrieval") retrieval_ms[i] = stage.milliseconds;
          else if (stage.stage == "pre_ranking") pre_ranking_ms[i] = stage.milliseconds;
          else ranking_ms[i] = stage.milliseconds;
        }
        total_ms[i] = result.milliseconds;
      }
    }
    if (!failure.empty()) throw DataError(failure);
    const auto mean = [&](const std::vector<double>& v) {
      double sum = 0.0;
      for (double x : v) sum += x;
      return v.empty() ? 0.0 : sum / static_cast<double>(v.size());
    };
    row.users = users.size();
    row.recall = row.hit_rate = mean(hit);
    row.ndcg = mean(ndcg);
    row.retrieval_ms = mean(retrieval_ms);
    row.pre_ranking_ms = mean(pre_ranking_ms);
    row.ranking_ms = mean(ranking_ms);
    row.total_ms = mean(total_ms);
  }
  return rows;
}

}  // namespace funnel::train
