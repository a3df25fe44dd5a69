#include "train/data/column_source.hpp"

#include <cmath>
#include <unordered_set>

#include "funnel/encoding.hpp"
#include "train/core/errors.hpp"

namespace funnel::train {

namespace {

std::string row_name(const TextColumns& table, size_t row) { return table.name + " row " + std::to_string(row); }

const std::string& field(const TextColumns& table, size_t column, size_t row, const std::string& what) {
  if (column >= table.values.size())
    throw ConfigError(table.name + ": no column " + std::to_string(column) + " (for " + what + "); it has " +
                      std::to_string(table.values.size()));
  return table.values[column][row];
}

void check_shape(const TextColumns& table) {
  if (table.names.size() != table.values.size())
    throw ConfigError(table.name + ": " + std::to_string(table.names.size()) + " column names for " + std::to_string(table.values.size()) +
                      " columns");
  for (size_t c = 0; c < table.values.size(); ++c)
    if (table.values[c].size() != table.rows())
      throw DataError(table.name + ": column '" + table.names[c] + "' has " + std::to_string(table.values[c].size()) + " rows, column '" +
                      table.names[0] + "' " + std::to_string(table.rows()));
  if (table.rows() == 0) throw DataError(table.name + ": no rows");
}

EntityTable entity_table(const EntityColumns& source, const std::string& entity) {
  const TextColumns& table = source.table;
  check_shape(table);
  EntityTableBuilder builder(entity, source.features);
  for (size_t r = 0; r < table.rows(); ++r) {
    const std::string where = row_name(table, r);
    builder.add(field(table, source.key, r, entity + " key"),
                [&](size_t column, const std::string& what) -> const std::string& {
                  if (column >= table.values.size())
                    throw DataError(where + ": no column " + std::to_string(column) + " (for " + what + ")");
                  return table.values[column][r];
                },
                where);
  }
  return builder.finish();
}

}  // namespace

size_t TextColumns::index(std::string_view column) const {
  for (size_t c = 0; c < names.size(); ++c)
    if (names[c] == column) return c;
  std::string known;
  for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
  throw ConfigError(name + ": no column '" + std::string(column) + "' (it has " + known + ")");
}

Dataset dataset_from_columns(const ColumnDataset& source) {
  const InteractionColumns& spec = source.interactions;
  const TextColumns& table = spec.table;
  check_shape(table);
  Dataset data;
  data.name = source.name;
  // Keys in order of first appearance, as load_dataset collects them.
  std::vector<std::string> user_keys, item_keys;
  std::unordered_set<std::string> seen_users, seen_items;
  std::vector<int64_t> timestamps(table.rows());
  for (size_t r = 0; r < table.rows(); ++r) {
    const std::string& user = field(table, spec.user, r, "user");
    const std::string& item = field(table, spec.item, r, "item");
    if (seen_users.insert(user).second) user_keys.push_back(user);
    if (seen_items.insert(item).second) item_keys.push_back(item);
    if (spec.timestamp < 0) {
      timestamps[r] = static_cast<int64_t>(r);
      continue;
    }
    const std::string& text = field(table, static_cast<size_t>(spec.timestamp), r, "timestamp");
    timestamps[r] = parse_integer(text, row_name(table, r) + ": column '" + table.names[static_cast<size_t>(spec.timestamp)] + "' (timestamp)");
  }
  data.users = source.users ? entity_table(*source.users, "user") : key_only_table("user", user_keys, table.name);
  data.items = source.items ? entity_table(*source.items, "item") : key_only_table("item", item_keys, table.name);
  check_distinct_feature_names(data, source.name);

  data.interactions.reserve(table.rows());
  for (size_t r = 0; r < table.rows(); ++r) {
    const std::string& user = table.values[spec.user][r];
    const std::string& item = table.values[spec.item][r];
    const auto u = data.users.index.find(user);
    if (u == data.users.index.end())
      throw DataError(row_name(table, r) + ": column '" + table.names[spec.user] + "' (user): key '" + user + "' is not in the users table");
    const auto i = data.items.index.find(item);
    if (i == data.items.index.end())
      throw DataError(row_name(table, r) + ": column '" + table.names[spec.item] + "' (item): key '" + item + "' is not in the items table");
    data.interactions.push_back({u->second, i->second, timestamps[r]});
  }
  return data;
}

}  // namespace funnel::train
