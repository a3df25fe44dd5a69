// Datasets from columns already in memory (the Python module's DataFrames and arrays): the tables that
// load_dataset builds from delimited files, built by the same EntityTableBuilder from the same text, with no
// file written on the way. Each column holds the text a delimited file would hold in that field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "train/data/dataset.hpp"

namespace funnel::train {

struct TextColumns {
  std::string name;                              // "interactions", "users", "items": named in every error
  std::vector<std::string> names;                // the columns' names
  std::vector<std::vector<std::string>> values;  // values[c][r]: column c of row r

  size_t rows() const { return values.empty() ? 0 : values.front().size(); }
  // The index of a named column; throws ConfigError naming the table and its columns.
  size_t index(std::string_view column) const;
};

struct EntityColumns {
  TextColumns table;
  size_t key = 0;                    // the key column
  std::vector<FeatureDef> features;  // column and flags_first_column index table's columns
};

struct InteractionColumns {
  TextColumns table;
  size_t user = 0, item = 1;
  int timestamp = -1;  // -1: the row order is the time order
};

struct ColumnDataset {
  std::string name = "in-memory";
  InteractionColumns interactions;
  std::optional<EntityColumns> users, items;  // absent: one feature, "<entity>_id", from the keys
};

// The dataset load_dataset would read from files holding the same text in the same order. Throws DataError
// naming the table, the row (0-based) and the column of the first problem, ConfigError for a column that
// does not exist.
Dataset dataset_from_columns(const ColumnDataset& source);

}  // namespace funnel::train
