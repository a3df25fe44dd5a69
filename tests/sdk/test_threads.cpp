// A loaded model is immutable and safe to share: 16 threads retrieve and rank from raw features on the
// same models at once, and every answer must be bit-identical to the one computed on one thread first.
// The ThreadSanitizer build runs this test (ctest --preset tsan); it needs no trainer.
#include <catch2/catch.hpp>
#include <atomic>
#include <bit>
#include <cstdint>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "funnel/funnel.hpp"
#include "funnel_c.h"

using funnel::Model;

namespace {

// "u" + std::to_string(i), written so that GCC 12 does not warn falsely (-Wrestrict) about the operator+.
std::string prefixed(const char* prefix, long i) { return std::string(prefix).append(std::to_string(i)); }

const std::string kGolden = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/golden";
constexpr int kThreads = 16;

std::unique_ptr<Model> load_golden(const std::string& name) {
  std::unique_ptr<Model> model;
  const funnel::Status status = Model::load_file(kGolden + "/" + name, &model);
  INFO(status.to_string());
  REQUIRE(status.is_ok());
  return model;
}

// The golden files' users: known and unknown ids, ages as numbers and as strings, unseen regions.
funnel::Features user(int i) {
  static const char* const devices[] = {"ios", "android", "web", "tv"};
  funnel::Features features;
  features.set("user_id", prefixed("u", i % 70));
  if (i % 3 == 0) {
    features.set("age", std::to_string(15 + i % 60));
  } else {
    features.set("age", 15.0 + i % 60);
  }
  features.set("region", prefixed("r", i % 11));
  features.set("device", devices[i % 4]);
  return features;
}

std::string item(int i) { return prefixed("i", i); }

struct RetrieveRequest {
  funnel::Features user;
  funnel::RetrieveOptions options;
};

struct RankRequest {
  const Model* model;
  funnel::Features user;
  std::vector<std::string> behaviours, candidates;
};

// Bit-exact: the same floats, not merely close ones.
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::bit_cast<uint32_t>(a[i]) != std::bit_cast<uint32_t>(b[i])) return false;
  return true;
}

struct Answer {
  funnel::StatusCode code = funnel::StatusCode::kOk;
  std::vector<std::string> keys;
  std::vector<uint32_t> indices;
  std::vector<float> scores;

  bool operator==(const Answer& other) const {
    return code == other.code && keys == other.keys && indices == other.indices && same_bits(scores, other.scores);
  }
};

Answer retrieve(const Model& model, const RetrieveRequest& request) {
  std::vector<funnel::Recommendation> top;
  Answer answer;
  answer.code = model.retrieve(request.user, request.options, &top).code();
  for (const funnel::Recommendation& r : top) {
    answer.keys.emplace_back(r.key);
    answer.indices.push_back(r.index);
    answer.scores.push_back(r.score);
  }
  return answer;
}

Answer rank(const RankRequest& request) {
  Answer answer;
  answer.code = request.model->rank(request.user, request.behaviours, request.candidates, &answer.scores).code();
  return answer;
}

}  // namespace

TEST_CASE("Threads: 16 threads sharing models give the single-threaded answers, bit for bit", "[threads]") {
  const auto retrieval = load_golden("retrieval.funnel");
  const auto can = load_golden("ranking-can.funnel");
  const auto independent = load_golden("ranking-can-independent.funnel");

  std::vector<RetrieveRequest> retrieves;
  for (int i = 0; i < 97; ++i) {
    RetrieveRequest request{user(i), {}};
    request.options.k = 1 + i % 15;
    for (int e = 0; e < i % 4; ++e) request.options.exclude.push_back(item((i * 7 + e * 3) % 45));
    retrieves.push_back(std::move(request));
  }
  // A request with a missing feature: the same error every time, from every thread.
  retrieves.push_back({funnel::Features{}.set("user_id", "u1"), {}});

  std::vector<RankRequest> ranks;
  for (int i = 0; i < 89; ++i) {
    RankRequest request{i % 2 ? can.get() : independent.get(), user(i * 5), {}, {}};
    // Up to 13 behaviours (more than the files' max_history of 10), some unknown to the item table.
    for (int b = 0; b < i % 14; ++b) request.behaviours.push_back(item((i * 11 + b * 5) % 44));
    for (int c = 0; c < 1 + i % 8; ++c) request.candidates.push_back(item((i * 3 + c * 7) % 40));
    ranks.push_back(std::move(request));
  }
  ranks.push_back({can.get(), user(1), {"i1"}, {"i1", "not in the item table"}});

  std::vector<Answer> expected_retrieve, expected_rank;
  for (const RetrieveRequest& request : retrieves) expected_retrieve.push_back(retrieve(*retrieval, request));
  for (const RankRequest& request : ranks) expected_rank.push_back(rank(request));
  CHECK(expected_retrieve.front().code == funnel::StatusCode::kOk);
  CHECK(expected_retrieve.back().code == funnel::StatusCode::kInvalidArgument);
  CHECK(expected_rank.front().code == funnel::StatusCode::kOk);
  CHECK(expected_rank.back().code == funnel::StatusCode::kNotFound);

  constexpr int kRounds = 3;
  std::atomic<size_t> calls{0}, mismatches{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      // Each thread walks the requests from its own starting point, so different requests overlap.
      for (int round = 0; round < kRounds; ++round) {
        for (size_t n = 0; n < retrieves.size(); ++n) {
          const size_t i = (n + static_cast<size_t>(t) * 13) % retrieves.size();
          if (!(retrieve(*retrieval, retrieves[i]) == expected_retrieve[i])) ++mismatches;
          const size_t r = (n + static_cast<size_t>(t) * 7) % ranks.size();
          if (!(rank(ranks[r]) == expected_rank[r])) ++mismatches;
          calls += 2;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(calls == size_t{kThreads} * kRounds * retrieves.size() * 2);
  CHECK(mismatches == 0);
}

TEST_CASE("Threads: the C ABI shares one model handle, and each thread sees its own last error", "[threads][c]") {
  FunnelModel* model = nullptr;
  REQUIRE(funnel_model_load_file((kGolden + "/retrieval.funnel").c_str(), &model) == FUNNEL_OK);
  const auto top_of = [model](int i, std::vector<uint32_t>* indices, std::vector<float>* scores) {
    FunnelFeatures* features = funnel_features_new();
    (void)funnel_features_set_string(features, "user_id", prefixed("u", i).c_str());
    (void)funnel_features_set_number(features, "age", 20.0 + i);
    (void)funnel_features_set_string(features, "region", prefixed("r", i % 8).c_str());
    (void)funnel_features_set_string(features, "device", i % 2 ? "ios" : "android");
    indices->assign(5, 0);
    scores->assign(5, 0.0f);
    size_t count = 0;
    const FunnelStatus status = funnel_model_retrieve(model, features, 5, nullptr, 0, indices->data(), scores->data(), &count);
    funnel_features_free(features);
    indices->resize(count);
    scores->resize(count);
    return status;
  };
  std::vector<std::vector<uint32_t>> expected_indices(kThreads);
  std::vector<std::vector<float>> expected_scores(kThreads);
  for (int t = 0; t < kThreads; ++t) REQUIRE(top_of(t, &expected_indices[t], &expected_scores[t]) == FUNNEL_OK);

  std::atomic<size_t> mismatches{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      const std::string unknown = prefixed("t", t);
      for (int round = 0; round < 20; ++round) {
        std::vector<uint32_t> indices;
        std::vector<float> scores;
        if (top_of(t, &indices, &scores) != FUNNEL_OK || indices != expected_indices[t] || !same_bits(scores, expected_scores[t]))
          ++mismatches;
        // An error in this thread: its message names this thread's feature, whatever the others do.
        FunnelFeatures* features = funnel_features_new();
        (void)funnel_features_set_string(features, unknown.c_str(), "x");
        uint32_t index = 0;
        float score = 0;
        size_t count = 0;
        const FunnelStatus status = funnel_model_retrieve(model, features, 1, nullptr, 0, &index, &score, &count);
        funnel_features_free(features);
        if (status != FUNNEL_INVALID_ARGUMENT || std::string(funnel_last_error()).rfind("unknown feature '" + unknown + "'", 0) != 0)
          ++mismatches;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  funnel_model_free(model);
  CHECK(mismatches == 0);
}
