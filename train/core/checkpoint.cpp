#include "train/core/checkpoint.hpp"

#include <cstring>
#include <fstream>
#include <iterator>

#include "train/core/errors.hpp"
#include "train/core/atomic_file.hpp"

namespace funnel::train {

namespace {

constexpr char kMagic[8] = {'F', 'N', 'L', 'C', 'K', 'P', 'T', '1'};

template <typename T>
void append(std::vector<uint8_t>& out, const T* data, size_t count) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(data);
  out.insert(out.end(), bytes, bytes + count * sizeof(T));
}

void append_u64(std::vector<uint8_t>& out, uint64_t value) { append(out, &value, 1); }

class Reader {
 public:
  Reader(const std::string& path, std::vector<uint8_t> bytes) : path_(path), bytes_(std::move(bytes)) {}
  uint64_t u64() {
    uint64_t value = 0;
    copy(&value, sizeof value);
    return value;
  }
  template <typename T>
  std::vector<T> array(uint64_t count) {
    if (count > (bytes_.size() - at_) / sizeof(T)) fail("an array runs past the end of the file");
    std::vector<T> out(count);
    copy(out.data(), count * sizeof(T));
    return out;
  }
  std::string text(uint64_t size) {
    if (size > bytes_.size() - at_) fail("the header runs past the end of the file");
    std::string out(reinterpret_cast<const char*>(bytes_.data() + at_), size);
    at_ += size;
    return out;
  }
  bool done() const { return at_ == bytes_.size(); }
  [[noreturn]] void fail(const std::string& why) const { throw TrainingError(path_ + ": not a usable checkpoint: " + why); }

 private:
  void copy(void* out, size_t size) {
    if (size > bytes_.size() - at_) fail("truncated");
    if (size == 0) return;  // an empty array has no storage to copy into (memcpy wants a valid pointer)
    std::memcpy(out, bytes_.data() + at_, size);
    at_ += size;
  }
  std::string path_;
  std::vector<uint8_t> bytes_;
  size_t at_ = 0;
};

}  // namespace

const std::vector<float>& Checkpoint::float_array(const std::string& name) const {
  const auto it = floats.find(name);
  if (it == floats.end()) throw TrainingError(path + ": the checkpoint has no array '" + name + "'");
  return it->second;
}

const std::vector<uint32_t>& Checkpoint::integer_array(const std::string& name) const {
  const auto it = integers.find(name);
  if (it == integers.end()) throw TrainingError(path + ": the checkpoint has no array '" + name + "'");
  return it->second;
}

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  nlohmann::json header = checkpoint.header;
  nlohmann::json floats = nlohmann::json::array(), integers = nlohmann::json::array();
  for (const auto& [name, values] : checkpoint.floats) floats.push_back({name, values.size()});
  for (const auto& [name, values] : checkpoint.integers) integers.push_back({name, values.size()});
  header["_floats"] = floats;
  header["_integers"] = integers;
  const std::string text = header.dump();

  std::vector<uint8_t> out(kMagic, kMagic + sizeof kMagic);
  append_u64(out, text.size());
  append(out, text.data(), text.size());
  for (const auto& [name, values] : checkpoint.floats) append(out, values.data(), values.size());
  for (const auto& [name, values] : checkpoint.integers) append(out, values.data(), values.size());
  write_file_atomically(path, out);
}

Checkpoint load_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TrainingError(path + ": cannot open checkpoint");
  Reader reader(path, std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {}));
  const std::vector<char> magic = reader.array<char>(sizeof kMagic);
  if (std::memcmp(magic.data(), kMagic, sizeof kMagic) != 0) reader.fail("wrong magic (not a Funnel checkpoint)");
  Checkpoint checkpoint;
  checkpoint.path = path;
  try {
    checkpoint.header = nlohmann::json::parse(reader.text(reader.u64()));
    for (const auto& entry : checkpoint.header.at("_floats"))
      checkpoint.floats[entry.at(0).get<std::string>()] = reader.array<float>(entry.at(1).get<uint64_t>());
    for (const auto& entry : checkpoint.header.at("_integers"))
      checkpoint.integers[entry.at(0).get<std::string>()] = reader.array<uint32_t>(entry.at(1).get<uint64_t>());
  } catch (const nlohmann::json::exception& e) {
    reader.fail(std::string("damaged header: ") + e.what());
  }
  if (!reader.done()) reader.fail("trailing bytes");
  return checkpoint;
}

}  // namespace funnel::train
