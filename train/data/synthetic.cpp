#include "train/data/synthetic.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string_view>
#include <vector>

#include "train/core/atomic_file.hpp"
#include "train/core/errors.hpp"
#include "train/core/rng.hpp"

namespace funnel::train {

namespace {

constexpr int kLatent = 8;
constexpr int kRegions = 8;
constexpr int kTagsPerCategory = 4;
const char* const kDevices[] = {"android", "ios", "web"};

using Vec = std::vector<double>;

Vec random_vector(Rng& rng, double scale) {
  Vec v(kLatent);
  for (double& x : v) x = scale * rng.normal();
  return v;
}

// Rows formatted into one buffer and written in large blocks: the interactions file is most of the output
// (100M rows for the streaming benchmark), and an ostream insertion per field was most of the time.
class RowWriter {
 public:
  explicit RowWriter(AtomicTextFile& file) : file_(file) { buffer_.reserve(kBlock + 64); }
  ~RowWriter() = default;
  RowWriter& text(std::string_view s) {
    buffer_.append(s);
    return *this;
  }
  RowWriter& number(int64_t value) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    buffer_.append(digits, end);
    return *this;
  }
  void end_row() {
    buffer_.push_back('\n');
    if (buffer_.size() >= kBlock) flush();
  }
  void flush() {
    file_.stream().write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    buffer_.clear();
  }

 private:
  static constexpr size_t kBlock = 1 << 20;
  AtomicTextFile& file_;
  std::string buffer_;
};

// Each file appears whole, or not at all, at its commit() (train/core/atomic_file.hpp).
AtomicTextFile open_output(const std::filesystem::path& path) { return AtomicTextFile(path.string()); }

}  // namespace

std::string write_synthetic_dataset(const std::string& directory, const SyntheticOptions& o) {
  if (o.users < 10 || o.items < 10 || o.categories < 2 || o.mean_interactions < 5)
    throw ConfigError("synthetic dataset: needs at least 10 users, 10 items, 2 categories and 5 interactions per user");
  if (!(o.pairing >= 0.0 && o.pairing <= 1.0))
    throw ConfigError("synthetic dataset: pairing is a share of interactions, from 0 to 1; got " + std::to_string(o.pairing));
  namespace fs = std::filesystem;
  fs::create_directories(directory);
  Rng rng(o.seed);

  std::vector<Vec> centres;
  for (uint32_t c = 0; c < o.categories; ++c) centres.push_back(random_vector(rng, 1.0));

  // Items: a category, a latent vector near its centre, a price that depends on the category, and tags
  // drawn mostly from the category's own tags.
  std::vector<uint32_t> item_category(o.items);
  std::vector<Vec> item_latent(o.items);
  std::vector<double> popularity(o.items);
  std::vector<uint32_t> rank(o.items);
  std::iota(rank.begin(), rank.end(), 1u);
  rng.shuffle(rank);
  {
    auto out = open_output(fs::path(directory) / "items.csv");
    out << "item_id,category,price,tags\n";
    for (uint32_t i = 0; i < o.items; ++i) {
      const uint32_t c = static_cast<uint32_t>(rng.below(o.categories));
      item_category[i] = c;
      item_latent[i] = random_vector(rng, 0.6);
      for (int k = 0; k < kLatent; ++k) item_latent[i][k] += centres[c][k];
      popularity[i] = 1.0 / std::pow(static_cast<double>(rank[i]), o.popularity_exponent);
      const double price = std::exp(2.0 + 0.15 * c + 0.4 * rng.normal());
      std::string tags;
      const int count = 1 + static_cast<int>(rng.below(3));
      for (int t = 0; t < count; ++t) {
        const bool own = rng.uniform() < 0.8;
        const uint32_t category = own ? c : static_cast<uint32_t>(rng.below(o.categories));
        if (t) tags.push_back('|');
        tags.append("t").append(std::to_string(category)).append("_").append(std::to_string(rng.below(kTagsPerCategory)));
      }
      char price_text[32];
      std::snprintf(price_text, sizeof price_text, "%.2f", price);
      out << "i" << i << ",c" << c << "," << price_text << "," << tags << "\n";
    }
    out.commit();
  }

  // Users: a favourite category (revealed by the age group) and a second one (revealed by the region).
  std::vector<Vec> user_latent(o.users);
  {
    auto out = open_output(fs::path(directory) / "users.csv");
    out << "user_id,age,region,device\n";
    for (uint32_t u = 0; u < o.users; ++u) {
      const int age = 18 + static_cast<int>(rng.below(52));
      const uint32_t age_group = static_cast<uint32_t>((age - 18) / 13);  // 0..3
      const uint32_t region = static_cast<uint32_t>(rng.below(kRegions));
      const uint32_t first = rng.uniform() < 0.7 ? (age_group * 5 + static_cast<uint32_t>(rng.below(5))) % o.categories
                                                 : static_cast<uint32_t>(rng.below(o.categories));
      const uint32_t second = rng.uniform() < 0.7 ? (region * 3 + 1) % o.categories : static_cast<uint32_t>(rng.below(o.categories));
      user_latent[u] = random_vector(rng, 0.5);
      for (int k = 0; k < kLatent; ++k) user_latent[u][k] += 0.7 * centres[first][k] + 0.4 * centres[second][k];
      out << "u" << u << "," << age << ",r" << region << "," << kDevices[rng.below(3)] << "\n";
    }
    out.commit();
  }

  // The hidden pairing of categories, from a stream of its own so that users and items stay as they are.
  Rng pairing_rng(Rng(o.seed ^ 0x9A1121A6ull).next());
  std::vector<uint32_t> pair(o.categories);
  std::vector<std::vector<uint32_t>> items_of(o.categories);
  if (o.pairing > 0.0) {
    std::iota(pair.begin(), pair.end(), 0u);
    pairing_rng.shuffle(pair);
    for (uint32_t i = 0; i < o.items; ++i) items_of[item_category[i]].push_back(i);
  }
  // An item of category pair(c) the user has not taken, uniformly (no popularity, no taste); o.items when
  // every one of them is taken.
  const auto paired_pick = [&](uint32_t previous, const std::vector<uint8_t>& taken) {
    std::vector<uint32_t> free;
    for (uint32_t i : items_of[pair[item_category[previous]]])
      if (!taken[i]) free.push_back(i);
    return free.empty() ? o.items : free[pairing_rng.below(free.size())];
  };

  // Interactions: each user picks distinct items with probability ~ popularity * exp(affinity), or with
  // `pairing`, the previous item's paired category.
  {
    auto out = open_output(fs::path(directory) / "interactions.csv");
    out << "user_id,item_id,timestamp\n";
    RowWriter rows(out);
    // cumulative[i] = weight[0] + ... + weight[i], added in the order the former linear scan added them, so
    // the first i with cumulative[i] > target (a binary search) is the item that scan picked, bit for bit.
    std::vector<double> cumulative(o.items);
    std::vector<uint8_t> taken(o.items);
    int64_t clock = 1'600'000'000;
    for (uint32_t u = 0; u < o.users; ++u) {
      double total = 0.0;
      for (uint32_t i = 0; i < o.items; ++i) {
        double affinity = 0.0;
        for (int k = 0; k < kLatent; ++k) affinity += user_latent[u][k] * item_latent[i][k];
        total += popularity[i] * std::exp(0.5 * std::clamp(affinity, -20.0, 20.0));
        cumulative[i] = total;
      }
      const uint32_t count = std::min<uint32_t>(o.items / 2, 5 + static_cast<uint32_t>(-std::log(1.0 - rng.uniform()) * (o.mean_interactions - 5)));
      std::fill(taken.begin(), taken.end(), 0);
      uint32_t previous = o.items;
      for (uint32_t n = 0; n < count; ++n) {
        uint32_t pick = o.items;
        if (previous < o.items && o.pairing > 0.0 && pairing_rng.uniform() < o.pairing) pick = paired_pick(previous, taken);
        while (pick == o.items || taken[pick]) {
          const double target = rng.uniform() * total;
          const auto first_above = std::upper_bound(cumulative.begin(), cumulative.end(), target);
          pick = first_above == cumulative.end() ? o.items - 1 : static_cast<uint32_t>(first_above - cumulative.begin());
        }
        taken[pick] = 1;
        previous = pick;
        clock += 1 + static_cast<int64_t>(rng.below(3600));
        rows.text("u").number(u).text(",i").number(pick).text(",").number(clock).end_row();
      }
    }
    rows.flush();
    out.commit();
  }

  nlohmann::json description = {
      {"name", "synthetic"},
      {"interactions", {{"path", "interactions.csv"}, {"header", true}, {"user", 0}, {"item", 1}, {"timestamp", 2}}},
      {"users",
       {{"path", "users.csv"},
        {"header", true},
        {"key", 0},
        {"features",
         {{{"name", "user_id"}, {"column", 0}},
          {{"name", "age"}, {"column", 1}, {"boundaries", {25, 35, 45, 55}}},
          {{"name", "region"}, {"column", 2}},
          {{"name", "device"}, {"column", 3}}}}}},
      {"items",
       {{"path", "items.csv"},
        {"header", true},
        {"key", 0},
        {"features",
         {{{"name", "item_id"}, {"column", 0}},
          {{"name", "category"}, {"column", 1}},
          {{"name", "price"}, {"column", 2}, {"kind", "dense"}},
          {{"name", "tags"}, {"column", 3}, {"kind", "multi_categorical"}, {"separator", "|"}}}}}}};
  const std::string path = (fs::path(directory) / "dataset.json").string();
  auto out = open_output(path);
  out << description.dump(2) << "\n";
  out.commit();
  return path;
}

}  // namespace funnel::train
