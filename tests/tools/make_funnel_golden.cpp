// Writes the golden file with every stage (tests/data/golden/three-stages.funnel) for scripts/make_golden.sh.
// The CLI writes one stage per file, so this small program puts retrieval, pre-ranking and ranking side by
// side through the trainer's own exporter (export_funnel), as the AutoFAS trainer will. The models are
// initialised from fixed seeds and not trained: the file freezes the format and the SDK's arithmetic on it,
// not a model's quality. Built only on demand (EXCLUDE_FROM_ALL).
//   make_funnel_golden --data DATASET.json --out FILE
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "train/data/dataset.hpp"
#include "train/core/atomic_file.hpp"
#include "train/export/export.hpp"
#include "train/ranking/ranker_model.hpp"
#include "train/retrieval/two_tower.hpp"

using namespace funnel::train;

int main(int argc, char** argv) {
  std::string data_path, out;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--data") == 0) data_path = argv[i + 1];
    else if (std::strcmp(argv[i], "--out") == 0) out = argv[i + 1];
  }
  if (data_path.empty() || out.empty()) {
    std::fprintf(stderr, "usage: make_funnel_golden --data DATASET.json --out FILE\n");
    return 2;
  }
  try {
    const Dataset data = load_dataset(data_path);
    // The settings of the other golden files (scripts/make_golden.sh): 4-dimensional embeddings, one hidden
    // layer of 8, seed 7.
    TrainConfig retrieval_config;
    retrieval_config.seed = 7;
    retrieval_config.threads = 1;
    retrieval_config.embedding_dim = 4;
    retrieval_config.hidden = {8};
    retrieval_config.output_dim = 4;
    const TwoTowerModel towers(data, retrieval_config);

    // The ranking stage (the teacher): CAN with a sequence pair per item feature and a user-fed pair.
    RankerConfig ranking_config;
    ranking_config.embedding_dim = 4;
    ranking_config.hidden = {8};
    ranking_config.max_history = 10;
    ranking_config.user_features = {"age", "region", "device"};
    ranking_config.coaction = {"item_id:item_id", "category:category", "item_id:region"};
    ranking_config.coaction_feed_dim = 4;
    ranking_config.coaction_layers = {4, 2};
    ranking_config.coaction_orders = 2;
    RankerModel ranker(data, ranking_config);
    Rng ranker_rng(7);
    ranker.init(ranker_rng);

    // The pre-ranking stage (the student): a DNN on fewer user features, the item features in the other
    // order than the item table's, a shorter behaviour window and a narrower MLP.
    RankerConfig student_config;
    student_config.model = "dnn";
    student_config.embedding_dim = 3;
    student_config.hidden = {6};
    student_config.max_history = 6;
    student_config.user_features = {"region"};
    student_config.item_features = {"category", "item_id"};
    RankerModel student(data, student_config);
    Rng student_rng(8);
    student.init(student_rng);

    const RetrievalPart retrieval{towers, retrieval_config};
    const Metadata metadata = {
        {"dataset", data.name},
        {"stage", "retrieval+pre_ranking+ranking"},
        {"pre_ranking", R"j({"features": ["user:region", "candidate:category", "candidate:item_id", "behaviours:category", )j"
                        R"j("behaviours:item_id"], "layers": [6, 1], "note": "untrained golden fixture (tests/tools/make_funnel_golden.cpp)"})j"}};
    write_file_atomically(out, export_funnel(data, &retrieval, &ranker, &student, metadata));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_funnel_golden: %s\n", e.what());
    return 1;
  }
  return 0;
}
