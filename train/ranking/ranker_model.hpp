// The ranking (CTR) model: embeddings of the user features, of the candidate's item features and of the
// behaviour sequence (pooled over its real positions), CAN's co-action outputs (coaction.hpp), then an
// MLP with PReLU and one logit. With no co-action pairs it is the DNN baseline.
#pragma once

#include <cstdint>
#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "train/ranking/coaction.hpp"
#include "train/data/ctr_data.hpp"
#include "funnel/ranker.hpp"
#include "train/core/layers.hpp"
#include "train/core/parameter.hpp"
#include "train/ranking/ranker_config.hpp"
#include "train/core/rng.hpp"
#include "train/core/row_init.hpp"

namespace funnel::train {

class RankerModel {
 public:
  // Resolves the config's feature names against the dataset; throws ConfigError naming a bad one. With
  // `whole_tables` false the embedding tables get no arrays (a sharded run: their rows live in the shards,
  // drawn by init_rows and read through bind_rows); they keep their names and shapes.
  RankerModel(const Dataset& data, const RankerConfig& config, bool whole_tables = true);
  RankerModel(const RankerModel&) = delete;
  RankerModel& operator=(const RankerModel&) = delete;

  // Glorot-uniform tables and kernels, zero biases, PReLU alpha 0.1 (the official CAN code's choices). The
  // tables are drawn per row (train/core/row_init.hpp): a row's values depend on rng's first draw, the table's
  // name and the row alone, so a shard draws its rows as the whole table has them (init_rows).
  void init(Rng& rng);
  // After init: rows `rows` of `table` (one of parameters()' tables) as init draws them, into `out`.
  void init_rows(const Parameter& table, std::span<const uint32_t> rows, float* out) const;
  std::vector<Parameter*> parameters();
  size_t parameter_count() const;

  // The SDK's view of this model, over the live parameters (export writes the file from it). One
  // exception: a co-action feed read as the prefix of a wider embedding (parameter_independence off) has
  // a null feed_table; the exporter writes that prefix as a table of its own.
  const RankerView& view() const { return view_; }
  // Recomputes view() after a table's whole values were replaced or freed (rank 0's gather for export, the
  // release after it): the view holds pointers into them.
  void refresh_view() { rebuild_view(); }

  // Where the forward reads and the backward accumulates the rows of embedding table `table` (one of
  // parameters()): the table itself (the default, and after bind_rows(table, nullptr, nullptr)), or the
  // fetched-row cache of the table's shard, global row id at cache row (*slots)[id]
  // (train/distributed/sharded_table.hpp). The cache may be refilled between steps: its rows are looked up
  // again at every forward and backward. The table's own values are then neither read nor written.
  void bind_rows(const Parameter* table, Parameter* cache, const std::vector<uint32_t>* slots);
  // Encoded item rows: item_columns() ids per row of the dataset's items table (the SDK's item table).
  const std::vector<uint32_t>& item_ids() const { return item_ids_; }
  uint32_t item_columns() const { return view_.item_columns; }
  // Model feature index of each item column.
  const std::vector<uint32_t>& item_column_features() const { return item_column_features_; }
  // Model feature indices of the user inputs and the co-action pairs, for export. `induction` and `feed` are
  // the tables the pair reads: its own, or (parameter_independence off) the features' embedding tables,
  // whose rows may be wider than the feed (the feed is then the first feed_dim values of a row).
  struct CoActionInfo {
    uint32_t induction_feature, feed_feature;
    const Parameter* induction;
    const Parameter* feed;
  };
  const std::vector<CoActionInfo>& coaction_info() const { return coaction_info_; }
  const Parameter& user_table(size_t input) const { return *user_tables_[input]; }
  const Parameter& item_table(size_t column) const { return *item_tables_[column]; }
  struct Layer {
    Parameter weight, bias, alpha;  // alpha is empty for the output layer
  };
  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }

  // Every (table, row) the forward of `batch` reads, possibly repeated: deferred Adam brings them up to
  // date first.
  template <typename Visit>
  void for_each_row_read(const CtrInstances& instances, const CtrSplit& split, std::span<const uint32_t> batch, Visit&& visit) const;

  // Training: forward of a batch of a split's instances (logits out), then backward from d loss / d logit.
  // Without update_parameters the backward stops at the MLP's input (the feature masks' gradients).
  void forward(const CtrInstances& instances, const CtrSplit& split, std::span<const uint32_t> batch, float* logits);
  void backward(std::span<const float> dlogits, bool update_parameters = true);

  // The MLP's input [batch, input_dim] of the last forward, masked. Its first student_input_dim() columns
  // are the embeddings (user, candidate, pooled behaviours), the rest the co-action outputs.
  const std::vector<float>& inputs() const { return inputs_; }
  size_t student_input_dim() const { return student_input_dim_; }
  size_t input_dim() const { return input_dim_; }
  // Input fields for AutoFAS's feature masks: "user:<feature>", "candidate:<feature>", "behaviours:<feature>".
  // A span of the input belongs to one field, or to two (a co-action output: its induction and its feed).
  struct InputSpan {
    size_t offset, width;
    std::vector<uint32_t> fields;
  };
  const std::vector<std::string>& field_names() const { return field_names_; }
  const std::vector<InputSpan>& input_spans() const { return spans_; }
  // One mask per field (0 or 1 as sampled, eq. 1), multiplying its spans from the next forward on; empty
  // turns masking off. After a backward, d loss / d mask per field.
  void set_field_masks(std::vector<float> masks);
  const std::vector<double>& field_mask_gradients() const { return field_gradients_; }

 private:
  // A table's rows as the forward and backward reach them (bind_rows): resolved once per pass.
  struct RowSource {
    Parameter* storage;
    const uint32_t* slots;  // null: row id is storage row id
    size_t row(uint32_t id) const { return slots ? slots[id] : id; }
    const float* value(uint32_t id) const { return storage->value.data() + row(id) * storage->row_size; }
    float* grad(uint32_t id) const { return storage->grad.data() + row(id) * storage->row_size; }
    void touch(uint32_t id) const { storage->touch(static_cast<uint32_t>(row(id))); }
  };
  struct Binding {
    Parameter* cache = nullptr;
    const std::vector<uint32_t>* slots = nullptr;
  };
  RowSource source(const Parameter* table) const;
  RowInit row_init(const Parameter& table) const;
  std::vector<RowSource> sources(const std::vector<Parameter*>& tables) const;
  void rebuild_view();
  void describe_fields(const std::vector<std::string>& item_names);
  // A sparse embedding table [rows, width], owned by the model.
  Parameter* sparse_table(std::string name, std::vector<uint64_t> shape);
  // CAN's co-action pairs and their tables at the configured independence levels (section 3.3), read
  // against the item columns (`item_names`, from the dataset's features `item_source`) built before.
  struct ItemColumns {
    const std::vector<std::string>& candidates;
    const std::vector<std::string>& behaviours;
    const std::vector<std::string>& all;
    const std::vector<int>& source;
  };
  void wire_coaction(const std::vector<CoActionPair>& pairs, const CoActionView& unit_shape, const ItemColumns& columns);
  std::span<const uint32_t> history_of(uint32_t instance) const;

  const Dataset& data_;
  RankerConfig config_;
  std::vector<std::unique_ptr<Parameter>> owned_;
  std::vector<Binding> bindings_;         // per owned_ table (bind_rows)
  bool whole_tables_ = true;
  bool initialised_ = false;
  uint64_t table_base_ = 0;               // init's first draw: the tables' seeds (row_init.hpp)
  uint32_t user_offset_ = 0;              // model feature index of the first user feature
  std::vector<Parameter*> user_tables_;   // per user input
  std::vector<uint32_t> user_features_;   // model feature index per user input
  std::vector<uint32_t> user_rows_;       // users-table feature column per user input
  std::vector<Parameter*> item_tables_;   // per item column, shared by candidate and behaviours
  std::vector<uint32_t> item_dims_;       // per item column: its embedding's width
  std::vector<uint32_t> item_column_features_;
  std::vector<uint32_t> item_ids_;        // [items, columns]
  std::vector<uint32_t> candidate_columns_, behaviour_columns_;  // the item columns each reads
  std::vector<std::string> field_names_;
  std::vector<InputSpan> spans_;
  size_t student_input_dim_ = 0, input_dim_ = 0;
  std::vector<float> field_masks_, raw_inputs_;
  std::vector<double> field_gradients_;
  std::vector<CoActionUnit> units_;
  std::vector<CoActionInfo> coaction_info_;
  std::vector<Parameter*> induction_tables_, feed_tables_;  // per unit
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<Linear> linears_;
  RankerView view_;

  // The last forward's batch and activations.
  const CtrInstances* instances_ = nullptr;
  const CtrSplit* split_ = nullptr;
  std::vector<uint32_t> batch_;
  std::vector<float> inputs_;                          // [batch, input_dim]
  std::vector<std::vector<float>> pre_, post_;         // per layer: before and after the activation
  std::vector<std::vector<float>> coaction_cache_;     // per unit: [batch, cache_size(max_history)]
  std::vector<float> grad_a_, grad_b_, grad_inputs_;
  std::vector<std::vector<float>> dinduction_, dfeed_; // per unit: per-instance gradients before the scatter
  std::vector<float> feed_rows_;                       // per thread: gathered feed embeddings
  std::vector<float> scratch_;                         // per thread: co-action backward scratch
};

template <typename Visit>
void RankerModel::for_each_row_read(const CtrInstances& instances, const CtrSplit& split, std::span<const uint32_t> batch,
                                    Visit&& visit) const {
  const size_t columns = view_.item_columns;
  for (uint32_t i : batch) {
    const uint32_t user = split.user[i], target = split.target[i];
    const uint32_t begin = instances.history_offsets[split.history[i]], end = instances.history_offsets[split.history[i] + 1];
    const uint32_t first = end - std::min(end - begin, config_.max_history);
    for (size_t k = 0; k < user_tables_.size(); ++k)
      for (uint32_t id : data_.users.features[user_rows_[k]].ids_of(user)) visit(user_tables_[k], id);
    for (uint32_t c : candidate_columns_) visit(item_tables_[c], item_ids_[target * columns + c]);
    for (uint32_t c : behaviour_columns_)
      for (uint32_t h = first; h < end; ++h) visit(item_tables_[c], item_ids_[instances.history_items[h] * columns + c]);
    for (size_t k = 0; k < units_.size(); ++k) {
      const CoActionView& shape = units_[k].shape();
      visit(induction_tables_[k], item_ids_[target * columns + shape.induction_column]);
      if (shape.feed_sequence) {
        for (uint32_t h = first; h < end; ++h) visit(feed_tables_[k], item_ids_[instances.history_items[h] * columns + shape.feed]);
      } else {
        visit(feed_tables_[k], data_.users.features[shape.feed - user_offset_].ids_of(user)[0]);
      }
    }
  }
}

}  // namespace funnel::train
