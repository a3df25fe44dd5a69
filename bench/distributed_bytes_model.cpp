// The row exchange's bytes per step, predicted (docs/distributed.md): for each embedding table of the two
// towers, a rank's batch of b positives reads U distinct rows; a row's owner is another rank with probability
// (N-1)/N (the hash spreads rows evenly); per remote row the rank sends its id (4 B) and its gradient
// (4 dim B), and it serves as many rows to the others in expectation (4 dim B each); and the id request to
// each other rank opens with the table's id count (4 B per table per other rank, sent even with no ids). So
//
//   bytes/step/rank = sum over tables of [ 4 (N-1) + E[U] (N-1)/N (4 + 8 dim) ],
//   E[U] = sum over ids v of 1 - (1 - q_v)^b,
//
// q_v the share of training positives whose (user or item) row lists id v (b draws with replacement). Usage:
//   funnel_distributed_bytes_model <dataset.json> <batch per rank> <ranks> <embedding_dim>
// prints {"model_bytes_per_step": ..., "tables": [...]}; bench/distributed_bytes.sh compares it with a run.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/data/dataset.hpp"
#include "train/data/split.hpp"

using namespace funnel::train;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s <dataset.json> <batch per rank> <ranks> <embedding_dim>\n", argv[0]);
    return 2;
  }
  const Dataset data = load_dataset(argv[1]);
  const Split split = leave_last_out(data);
  const double b = std::atof(argv[2]), ranks = std::atof(argv[3]), dim = std::atof(argv[4]);
  const double positives = static_cast<double>(split.train.size());
  double total = 0.0;
  nlohmann::json tables = nlohmann::json::array();
  for (const EntityTable* table : {&data.users, &data.items}) {
    for (const FeatureColumn& f : table->features) {
      if (f.def.kind == FeatureKind::kDense) continue;
      std::vector<double> hits(f.cardinality, 0.0);  // positives whose row lists id v
      for (const Interaction& x : split.train) {
        const uint32_t row = table == &data.users ? x.user : x.item;
        std::vector<uint32_t> ids(f.ids_of(row).begin(), f.ids_of(row).end());
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        for (uint32_t id : ids) hits[id] += 1.0;
      }
      double unique = 0.0;
      for (double h : hits)
        if (h > 0) unique += 1.0 - std::pow(1.0 - h / positives, b);
      const double bytes = 4.0 * (ranks - 1.0) + unique * (ranks - 1.0) / ranks * (4.0 + 8.0 * dim);
      total += bytes;
      tables.push_back({{"table", table->name + "/" + f.def.name}, {"expected_unique_rows", unique}, {"bytes_per_step", bytes}});
    }
  }
  std::printf("%s\n", nlohmann::json({{"model_bytes_per_step", total}, {"tables", tables}}).dump().c_str());
  return 0;
}
