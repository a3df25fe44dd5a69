// The verbs that only read or rewrite a model file: inspect, recommend, rank, prerank, update-catalogue,
// bundle, bench-layers. They need the SDK alone: no trainer header is included here.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>

#include "funnel/atomic_file.hpp"
#include "funnel/funnel.hpp"
#include "funnel/layer_latency.hpp"
#include "train/cli/cli_support.hpp"
#include "train/cli/commands.hpp"
#include "train/cli/request_json.hpp"

namespace funnel::train::cli {

namespace {

using json = nlohmann::json;

// ---- inspect -----------------------------------------------------------------------------------------
// Raw features for every model feature (a value outside the vocabulary where it is categorical): what a
// stage costs does not depend on which ids it looks up.
Features any_user(const Model& model) {
  Features user;
  for (size_t f = 0; f < model.feature_count(); ++f) {
    const FeatureInfo info = model.feature_info(f);
    if (info.kind == "dense") user.set(info.name, 0.0);
    else if (info.kind == "multi_categorical") user.set(info.name, std::vector<std::string>{"x"});
    else user.set(info.name, "x");
  }
  return user;
}

struct StageLatency {
  double microseconds = 0;  // median
  size_t behaviours = 0, runs = 0;
};

// What the SDK takes here to score 1,000 candidates drawn from the item table (a fixed seed, with
// replacement) for a user with max_behaviours behaviours: the median of 20 runs after one warm-up.
StageLatency measure_stage_latency(const Model& model, bool pre_ranking) {
  constexpr size_t kCandidates = 1000, kRuns = 20;
  StageLatency latency;
  const size_t items = model.item_table_size();
  if (items == 0) return latency;
  std::mt19937_64 rng(20240611);
  std::uniform_int_distribution<size_t> pick(0, items - 1);
  const RankerView& view = pre_ranking ? model.pre_ranker() : model.ranker();
  std::vector<std::string> candidates(kCandidates), behaviours(view.max_behaviours);
  for (std::string& key : candidates) key = model.ranking_item_key(pick(rng));
  for (std::string& key : behaviours) key = model.ranking_item_key(pick(rng));
  const Features user = any_user(model);
  std::vector<float> probabilities;
  std::vector<double> times;
  for (size_t run = 0; run <= kRuns; ++run) {
    const auto start = std::chrono::steady_clock::now();
    const Status status = pre_ranking ? model.prerank(user, behaviours, candidates, &probabilities)
                                      : model.rank(user, behaviours, candidates, &probabilities);
    if (!status) throw std::runtime_error(status.to_string());
    if (run > 0) times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  latency.microseconds = 0.5 * (times[kRuns / 2 - 1] + times[kRuns / 2]);
  latency.behaviours = behaviours.size();
  latency.runs = kRuns;
  return latency;
}

// The AutoFAS search's record of the student (metadata "pre_ranking", a JSON object the trainer writes):
// the features and layers it chose and the latency it predicted, next to what inspect measures.
void print_autofas_metadata(const Model& model) {
  for (const auto& [key, value] : model.metadata()) {
    if (key != "pre_ranking") continue;
    const json object = json::parse(value, nullptr, /*allow_exceptions=*/false);
    if (!object.is_object()) {
      std::cout << "  AutoFAS          " << value << "\n";
      return;
    }
    const auto text = [](const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
    const auto list = [&text](const json& v) {
      if (!v.is_array()) return text(v);
      std::string out;
      for (const json& element : v) out += (out.empty() ? "" : ", ") + text(element);
      return out;
    };
    std::cout << "  AutoFAS search\n";
    const std::vector<std::pair<std::string, std::string>> known = {{"features", "features chosen "},
                                                                     {"layers", "layers          "},
                                                                     {"predicted_us_per_1000", "predicted us/1k "},
                                                                     {"latency_target", "latency target  "}};
    for (const auto& [field, label] : known)
      if (object.contains(field)) std::cout << "    " << label << " " << list(object[field]) << "\n";
    for (const auto& [field, v] : object.items())
      if (std::none_of(known.begin(), known.end(), [&](const auto& k) { return k.first == field; }))
        std::cout << "    " << field << " = " << text(v) << "\n";
  }
}

int run_inspect(const std::string& path, bool no_verify) {
  const auto model = open_model(path, /*verify=*/false);  // the last line says what verify() found
  std::cout << "file            " << path << " (" << model->byte_size() << " bytes)\n";
  std::cout << "format version  " << model->format_version() << "\n";
  std::cout << "producer        " << model->producer() << "\n";
  std::cout << "features        " << model->feature_count() << "\n";
  for (size_t f = 0; f < model->feature_count(); ++f) {
    const FeatureInfo info = model->feature_info(f);
    std::cout << "  " << info.name << "  " << info.kind;
    if (info.kind != "dense") std::cout << "  ids " << info.cardinality;
    if (info.vocabulary_size) std::cout << "  vocabulary " << info.vocabulary_size;
    if (info.hash_buckets) std::cout << "  hashed into " << info.hash_buckets;
    std::cout << "\n";
  }
  if (model->has_retrieval()) {
    const auto describe = [&model](const char* name, const TowerView& tower) {
      std::cout << "  " << name << " tower  inputs";
      for (const TowerInputView& input : tower.inputs)
        std::cout << " " << model->feature_info(input.feature).name << (input.table ? "[" + std::to_string(input.dim) + "]" : "");
      std::cout << "  ->  " << tower.input_dim();
      for (const DenseLayerView& layer : tower.layers)
        std::cout << " -> " << layer.out << (layer.activation == Activation::kRelu ? " relu" : layer.activation == Activation::kTanh ? " tanh" : "");
      std::cout << (tower.l2_normalize ? " -> l2" : "") << "\n";
    };
    std::cout << "retrieval stage\n";
    describe("user", model->user_tower());
    describe("item", model->item_tower());
    std::cout << "  catalogue     " << model->catalogue_size() << " items x " << model->embedding_dim() << " dims ("
              << precision_name(model->catalogue_precision())
              << (model->catalogue_precision() != Precision::kF32 && model->catalogue_embeddings() ? ", exact f32 rows for re-scoring" : "")
              << ")\n";
    // A collapsed model maps every item to nearly the same direction: the mean pairwise cosine of the
    // (unit) item embeddings, (|sum v|^2 - n) / (n (n - 1)), says so at a glance.
    const size_t n = model->catalogue_size(), dim = model->embedding_dim();
    if (n > 1) {
      std::vector<double> sum(dim, 0.0);
      double squares = 0.0;
      std::vector<float> row(dim);
      for (size_t i = 0; i < n; ++i) {
        model->catalogue_row(i, row.data());
        for (size_t k = 0; k < dim; ++k) {
          const double x = row[k];
          sum[k] += x;
          squares += x * x;
        }
      }
      double total = 0.0;
      for (double s : sum) total += s * s;
      std::printf("  item spread   mean pairwise cosine %.3f (near 1: the items have collapsed together)\n",
                  (total - squares) / (static_cast<double>(n) * static_cast<double>(n - 1)));
    }
  }
  // A ranking-like stage (ranking, pre-ranking): its inputs, co-action pairs, MLP, and what scoring 1,000
  // candidates takes here.
  const auto describe_ranking = [&model](const char* title, const RankerView& ranker, bool pre) {
    std::cout << title << "\n";
    const auto describe = [&](const char* name, const std::vector<TowerInputView>& inputs, bool item_columns) {
      if (inputs.empty()) return;
      std::cout << "  " << name;
      for (const TowerInputView& input : inputs) {
        const size_t feature = item_columns ? model->item_column_feature(input.feature) : input.feature;
        std::cout << " " << model->feature_info(feature).name << "[" << input.dim << "]";
      }
      std::cout << "\n";
    };
    describe("user inputs     ", ranker.user_inputs, false);
    describe("candidate inputs", ranker.item_inputs, true);
    describe(ranker.behaviour_inputs.empty() || ranker.behaviour_inputs[0].pooling == Pooling::kSum ? "behaviours (sum)"
                                                                                                    : "behaviours (mean)",
             ranker.behaviour_inputs, true);
    std::cout << "  max behaviours   " << ranker.max_behaviours << "\n";
    for (const CoActionView& unit : ranker.coactions) {
      const std::string feed = unit.feed_sequence ? "behaviour " + model->feature_info(model->item_column_feature(unit.feed)).name
                                                  : "user " + model->feature_info(unit.feed).name;
      std::cout << "  co-action        " << model->feature_info(model->item_column_feature(unit.induction_column)).name << " -> " << feed
                << "  micro-MLP " << unit.feed_dim;
      for (uint32_t size : unit.layer_sizes) std::cout << "->" << size;
      std::cout << (unit.bias ? " with bias" : " no bias") << ", " << unit.orders << " order" << (unit.orders > 1 ? "s" : "")
                << (unit.order_independent ? " (independent)" : "") << ", " << unit.output_dim() << " outputs\n";
    }
    std::cout << "  MLP              " << ranker.input_dim();
    for (const DenseLayerView& layer : ranker.layers)
      std::cout << " -> " << layer.out << (layer.activation == Activation::kPRelu ? " prelu" : layer.activation == Activation::kRelu ? " relu" : "");
    std::cout << " (logit)\n  item table       " << model->item_table_size() << " items\n";
    const StageLatency latency = measure_stage_latency(*model, pre);
    if (latency.runs > 0)
      std::printf("  measured         %.0f us per 1,000 candidates (%zu behaviours; median of %zu runs, %s kernels)\n",
                  latency.microseconds, latency.behaviours, latency.runs, kernels::isa());
  };
  if (model->has_pre_ranking()) {
    describe_ranking("pre-ranking stage", model->pre_ranker(), true);
    print_autofas_metadata(*model);
  }
  if (model->has_ranking()) describe_ranking("ranking stage", model->ranker(), false);
  std::cout << "tensors         " << model->tensor_count() << "\n";
  size_t tensor_bytes = 0;
  for (size_t t = 0; t < model->tensor_count(); ++t) {
    const TensorInfo tensor = model->tensor_info(t);
    std::string shape;
    for (uint64_t extent : tensor.shape) shape += (shape.empty() ? "" : " x ") + std::to_string(extent);
    std::printf("  %-40.*s %-4s %-16s %10zu bytes\n", static_cast<int>(tensor.name.size()), tensor.name.data(), tensor.dtype,
                shape.c_str(), tensor.bytes);
    tensor_bytes += tensor.bytes;
  }
  std::printf("  %zu bytes of tensor data in a %zu-byte file\n", tensor_bytes, model->byte_size());
  for (const auto& [key, value] : model->metadata()) {
    if (key == "history" || key == "ranking_epochs") continue;  // long; read it with the metrics log instead
    if (key == "pre_ranking" && model->has_pre_ranking()) continue;  // printed with the stage
    std::cout << "metadata " << key << " = " << value << "\n";
  }
  std::cout << "kernels         " << kernels::isa() << "\n";
  // The checks load leaves out (checksums, key tables, item-table ids): a file that fails them is reported.
  if (no_verify) {
    std::cout << "verified        skipped (--no-verify)\n";
    return 0;
  }
  const auto start = std::chrono::steady_clock::now();
  if (const Status verified = model->verify(); !verified) {
    std::cout << "verified        no: " << verified.message() << "\n";
    return 1;
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("verified        yes: %s, key tables sorted and distinct, item ids in range (%.1f ms)\n",
              model->has_checksums() ? "every tensor, key table and the whole file match their checksums"
                                     : "no checksums (format 2 files carry none)",
              ms);
  return 0;
}

// ---- recommend ---------------------------------------------------------------------------------------
// --user: a JSON object, or @file holding one.
Features user_features(const std::string& argument) {
  if (argument.empty() || argument[0] != '@') return features_from_json(argument);
  std::ifstream in(argument.substr(1));
  if (!in) throw std::runtime_error(argument.substr(1) + ": cannot open");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return features_from_json(buffer.str());
}

struct RecommendArgs {
  std::string model, user;
  funnel::CascadeOptions options;
  std::vector<std::string> skip;  // stage names: pre_ranking, ranking
  bool json = false;
  bool no_verify = false;
};

// The whole cascade the file holds (retrieval, pre-ranking, ranking), with each stage's time.
int run_recommend(const RecommendArgs& parsed) {
  RecommendArgs args = parsed;
  for (const std::string& stage : args.skip) {
    if (stage == "pre_ranking") args.options.skip_pre_ranking = true;
    else if (stage == "ranking") args.options.skip_ranking = true;
    else throw std::runtime_error("--skip: unknown stage '" + stage + "'; the stages a call can leave out are pre_ranking and ranking");
  }
  const auto model = open_model(args.model, !args.no_verify);
  CascadeResult result;
  if (Status s = model->recommend(user_features(args.user), args.options, &result); !s) throw std::runtime_error(s.to_string());
  // The catalogue index (the retrieval stage's), or the item-table row in a file that only ranks.
  const auto index_of = [&model](std::string_view key) {
    return model->has_retrieval() ? model->find_item(key) : model->find_ranking_item(key);
  };
  if (args.json) {
    json items = json::array();
    for (const CascadeItem& item : result.items) {
      json entry = {{"key", item.key}, {"index", index_of(item.key)}, {"score", item.score}};
      if ((model->has_ranking() || model->has_pre_ranking()) && model->has_retrieval()) entry["retrieval_score"] = item.retrieval_score;
      items.push_back(entry);
    }
    json stages = json::array();
    for (const StageReport& stage : result.stages)
      stages.push_back({{"stage", stage.stage}, {"scored", stage.scored}, {"kept", stage.kept}, {"ms", stage.milliseconds}});
    std::cout << json{{"recommendations", items}, {"stages", stages}, {"ms", result.milliseconds}}.dump() << "\n";
    return 0;
  }
  for (size_t i = 0; i < result.items.size(); ++i)
    std::printf("%3zu  %-24.*s %.6f\n", i + 1, static_cast<int>(result.items[i].key.size()), result.items[i].key.data(),
                result.items[i].score);
  for (const StageReport& stage : result.stages)
    std::printf("%-11.*s %7zu -> %-5zu %8.3f ms\n", static_cast<int>(stage.stage.size()), stage.stage.data(), stage.scored, stage.kept,
                stage.milliseconds);
  std::printf("total %27.3f ms (%s kernels)\n", result.milliseconds, kernels::isa());
  return 0;
}

// ---- update-catalogue --------------------------------------------------------------------------------
struct UpdateCatalogueArgs {
  std::string model, add, out;
  std::vector<std::string> remove;
};

// Items to add: JSON Lines, one {"key": ..., "features": {...}} per line (blank lines skipped).
std::vector<std::pair<std::string, Features>> items_from_json_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::vector<std::pair<std::string, Features>> items;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number)
    if (auto item = item_from_json_line(line, path + ":" + std::to_string(number))) items.push_back(std::move(*item));
  return items;
}

// New items embedded by the file's item tower and removed items, written to a new file: no retraining.
int run_update_catalogue(const UpdateCatalogueArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  const auto model = open_model(args.model, /*verify=*/false);  // update_catalogue verifies it before copying anything
  CatalogueUpdate update;
  if (!args.add.empty()) update.upsert = items_from_json_lines(args.add);
  update.remove = args.remove;
  std::unique_ptr<Model> updated;
  if (Status s = model->update_catalogue(update, &updated); !s) throw std::runtime_error(args.model + ": " + s.to_string());
  if (Status s = updated->save(args.out); !s) throw std::runtime_error(s.to_string());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (model->has_retrieval())
    std::printf("catalogue   %zu -> %zu items (%s)\n", model->catalogue_size(), updated->catalogue_size(),
                precision_name(updated->catalogue_precision()));
  if (model->item_table_size() > 0)
    std::printf("item table  %zu -> %zu items\n", model->item_table_size(), updated->item_table_size());
  std::printf("wrote %s (%zu bytes) in %.1f ms: %zu added or replaced, %zu removed\n", args.out.c_str(), updated->byte_size(), ms,
              update.upsert.size(), update.remove.size());
  return 0;
}

// ---- bundle ------------------------------------------------------------------------------------------
// Stage files joined into one model file (Model::bundle): the trainer writes retrieval, ranking and
// pre-ranking + ranking to separate files; the SDK serves the whole funnel from one.
int run_bundle(const std::vector<std::string>& inputs, const std::string& out) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Model>> models(inputs.size());
  std::vector<BundlePart> parts;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (Status s = Model::load_file(inputs[i], &models[i]); !s) throw std::runtime_error(inputs[i] + ": " + s.to_string());
    parts.push_back({inputs[i], models[i].get()});
  }
  std::unique_ptr<Model> bundled;
  if (Status s = Model::bundle(parts, &bundled); !s) throw std::runtime_error(s.to_string());
  if (Status s = bundled->save(out); !s) throw std::runtime_error(s.to_string());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  for (const BundlePart& part : parts) {
    if (part.model->has_retrieval()) std::printf("retrieval    from %s\n", part.name.c_str());
    if (part.model->has_pre_ranking()) std::printf("pre_ranking  from %s\n", part.name.c_str());
    if (part.model->has_ranking()) std::printf("ranking      from %s\n", part.name.c_str());
  }
  std::printf("wrote %s (%zu bytes, %zu tensors, verified) in %.1f ms\n", out.c_str(), bundled->byte_size(), bundled->tensor_count(), ms);
  return 0;
}

// ---- rank, prerank -----------------------------------------------------------------------------------
// Click probabilities of the candidates by the ranking stage, or by the pre-ranking stage (`pre_ranking`).
int run_rank(const std::string& model_path, const std::string& user, const std::vector<std::string>& behaviours,
             const std::vector<std::string>& candidates, bool as_json, bool verify, bool pre_ranking = false) {
  const auto model = open_model(model_path, verify);
  const char* stage = pre_ranking ? "pre-ranking" : "ranking";
  if (!(pre_ranking ? model->has_pre_ranking() : model->has_ranking()))
    throw std::runtime_error(model_path + ": the model has no " + stage + " stage");
  std::vector<float> probabilities;
  const auto start = std::chrono::steady_clock::now();
  const Features features = user_features(user);
  const Status status = pre_ranking ? model->prerank(features, behaviours, candidates, &probabilities)
                                    : model->rank(features, behaviours, candidates, &probabilities);
  if (!status) throw std::runtime_error(status.to_string());
  const double micros = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
  std::vector<size_t> order(candidates.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return probabilities[a] > probabilities[b]; });
  if (as_json) {
    json items = json::array();
    for (size_t i : order) items.push_back({{"key", candidates[i]}, {"probability", probabilities[i]}});
    std::cout << json{{"ranked", items}, {pre_ranking ? "prerank_us" : "rank_us", micros}}.dump() << "\n";
  } else {
    for (size_t r = 0; r < order.size(); ++r) std::printf("%3zu  %-24s %.6f\n", r + 1, candidates[order[r]].c_str(), probabilities[order[r]]);
    std::printf("%s %zu candidates with %zu behaviours in %.0f us (%s kernels)\n", pre_ranking ? "pre-ranked" : "ranked",
                candidates.size(), behaviours.size(), micros, kernels::isa());
  }
  return 0;
}

// ---- bench-layers ------------------------------------------------------------------------------------
// The dense-layer latency table AutoFAS reads (funnel/layer_latency.hpp), measured here by the SDK.
int run_bench_layers(const std::string& out, const LayerLatencyOptions& options) {
  LayerLatencyTable table;
  const auto start = std::chrono::steady_clock::now();
  if (Status s = measure_layer_latency(options, &table); !s) throw std::runtime_error(s.message());
  const std::string text = layer_latency_json(table);
  if (Status s = funnel::write_file_atomically(out, text); !s) throw std::runtime_error(s.message());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-8s", "in\\out");
  for (uint32_t o : table.outputs) std::printf(" %9u", o);
  std::printf("   (us per layer over %zu candidates, median of %zu)\n", table.candidates, table.repeats);
  for (size_t i = 0; i < table.inputs.size(); ++i) {
    std::printf("%-8u", table.inputs[i]);
    for (size_t o = 0; o < table.outputs.size(); ++o) std::printf(" %9.1f", table.at(i, o));
    std::printf("\n");
  }
  std::printf("wrote %s (%s) in %s\n", out.c_str(), table.target.c_str(), format_seconds(seconds).c_str());
  return 0;
}

class ModelCommands final : public CommandFamily {
 public:
  explicit ModelCommands(CLI::App& app) {
    rank = app.add_subcommand("rank", "click probabilities of candidate items for a user and their behaviour sequence");
    rank->add_option("--model", rank_model, "model file")->required();
    rank->add_option("--user", rank_user, "the user's features: a JSON object, or @file")->capture_default_str();
    rank->add_option("--behaviours", rank_behaviours, "item keys the user interacted with, oldest first")->delimiter(',');
    rank->add_option("--candidates", rank_candidates, "item keys to score")->delimiter(',')->required();
    rank->add_flag("--json", rank_json, "print JSON");
    add_no_verify_flag(rank, rank_no_verify);
    prerank = app.add_subcommand("prerank", "click probabilities of candidate items by the pre-ranking stage (as rank does "
                                                  "with the ranking stage)");
    prerank->add_option("--model", prerank_model, "model file")->required();
    prerank->add_option("--user", prerank_user, "the user's features: a JSON object, or @file")->capture_default_str();
    prerank->add_option("--behaviours", prerank_behaviours, "item keys the user interacted with, oldest first")->delimiter(',');
    prerank->add_option("--candidates", prerank_candidates, "item keys to score")->delimiter(',')->required();
    prerank->add_flag("--json", prerank_json, "print JSON");
    add_no_verify_flag(prerank, prerank_no_verify);
    bench_layers = app.add_subcommand("bench-layers", "time one dense layer a -> b (then PReLU) over N candidates for a grid "
                                                            "of widths, as the SDK ranks: the latency table AutoFAS reads (JSON)");
    bench_layers->add_option("--out", bench_out, "the table to write (JSON)")->required();
    bench_layers->add_option("--candidates", bench_options.candidates, "rows of one call")->capture_default_str();
    bench_layers->add_option("--inputs", bench_options.inputs, "input widths a")->delimiter(',')->capture_default_str();
    bench_layers->add_option("--outputs", bench_options.outputs, "output widths b (1: the logit layer, no PReLU)")
        ->delimiter(',')
        ->capture_default_str();
    bench_layers->add_option("--repeats", bench_options.repeats, "timed samples per cell; the median is kept")->capture_default_str();
    bench_layers->add_option("--target", bench_options.target, "what the table says it measured (default: native <kernels>)");
    inspect = app.add_subcommand("inspect", "print what a model file holds");
    inspect->add_option("model", inspect_path, "model file")->required();
    add_no_verify_flag(inspect, inspect_no_verify);
    recommend = app.add_subcommand("recommend", "the whole cascade the file holds (retrieval, pre-ranking, ranking) for a user, "
                                                      "with each stage's time");
    recommend->add_option("--model", recommend_args.model, "model file")->required();
    recommend->add_option("--user", recommend_args.user, "the user's features: a JSON object, or @file")->required();
    recommend->add_option("-k,--k", recommend_args.options.k, "how many items")->capture_default_str();
    recommend->add_option("--retrieve-k", recommend_args.options.retrieve_k, "candidates retrieval passes on (at least k)")
        ->capture_default_str();
    recommend->add_option("--prerank-k", recommend_args.options.prerank_k, "candidates pre-ranking passes to ranking (at least k)")
        ->capture_default_str();
    recommend->add_option("--behaviours", recommend_args.options.behaviours, "the user's behaviour sequence for (pre-)ranking, oldest first")
        ->delimiter(',');
    recommend->add_option("--candidates", recommend_args.options.candidates, "the items to rank when the file has no retrieval stage")
        ->delimiter(',');
    recommend->add_option("--exclude", recommend_args.options.exclude, "item keys never to return (e.g. already seen)")->delimiter(',');
    recommend->add_option("--skip", recommend_args.skip, "stages the file holds to leave out (pre_ranking, ranking), to see what each adds")
        ->delimiter(',');
    recommend->add_option("--allow", recommend_args.options.allow, "when given, only these item keys may be returned")->delimiter(',');
    recommend->add_option("--threads", recommend_args.options.threads, "threads scanning the catalogue (0: every core)")
        ->capture_default_str();
    recommend->add_flag("--json", recommend_args.json, "print JSON");
    add_no_verify_flag(recommend, recommend_args.no_verify);
    update_catalogue = app.add_subcommand("update-catalogue", "add, replace or remove items of a model file without retraining "
                                                                    "(new items are embedded by the file's item tower)");
    update_catalogue->add_option("--model", update_args.model, "model file")->required();
    update_catalogue->add_option("--add", update_args.add, "items to add or replace: JSON Lines, {\"key\": ..., \"features\": {...}} each")
        ->check(CLI::ExistingFile);
    update_catalogue->add_option("--remove", update_args.remove, "item keys to remove")->delimiter(',');
    update_catalogue->add_option("--out", update_args.out, "the updated model file (written atomically; may be --model)")->required();
    bundle = app.add_subcommand("bundle", "join stage files into one model file: each stage (retrieval, pre-ranking, ranking) "
                                          "from one file; their features and item keys must agree");
    bundle->add_option("files", bundle_inputs, "the stage files")->required()->check(CLI::ExistingFile);
    bundle->add_option("--out", bundle_out, "the model file to write (written atomically)")->required();
  }

  std::optional<int> run() override {
    if (*rank) return run_rank(rank_model, rank_user, rank_behaviours, rank_candidates, rank_json, !rank_no_verify);
    if (*prerank)
      return run_rank(prerank_model, prerank_user, prerank_behaviours, prerank_candidates, prerank_json, !prerank_no_verify, /*pre_ranking=*/true);
    if (*bench_layers) return run_bench_layers(bench_out, bench_options);
    if (*inspect) return run_inspect(inspect_path, inspect_no_verify);
    if (*recommend) return run_recommend(recommend_args);
    if (*update_catalogue) return run_update_catalogue(update_args);
    if (*bundle) return run_bundle(bundle_inputs, bundle_out);
    return std::nullopt;
  }

 private:
  std::string rank_model, rank_user = "{}";
  std::vector<std::string> rank_behaviours, rank_candidates;
  bool rank_json = false, rank_no_verify = false;
  CLI::App* rank = nullptr;
  std::string prerank_model, prerank_user = "{}";
  std::vector<std::string> prerank_behaviours, prerank_candidates;
  bool prerank_json = false, prerank_no_verify = false;
  CLI::App* prerank = nullptr;
  std::string bench_out;
  LayerLatencyOptions bench_options;
  CLI::App* bench_layers = nullptr;
  std::string inspect_path;
  bool inspect_no_verify = false;
  CLI::App* inspect = nullptr;
  RecommendArgs recommend_args;
  CLI::App* recommend = nullptr;
  UpdateCatalogueArgs update_args;
  CLI::App* update_catalogue = nullptr;
  std::vector<std::string> bundle_inputs;
  std::string bundle_out;
  CLI::App* bundle = nullptr;
};

}  // namespace

std::unique_ptr<CommandFamily> add_model_commands(CLI::App& app) { return std::make_unique<ModelCommands>(app); }

}  // namespace funnel::train::cli
