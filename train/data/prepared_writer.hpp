// Writing the binary files of a prepared folder (prepared.hpp): `funnel prepare`'s interaction rows and
// small files (prepare.cpp) and its CTR instances (ctr_prepare.cpp).
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "train/core/errors.hpp"
#include "train/data/prepared.hpp"

namespace funnel::train {

// One binary file of the folder: a placeholder header, the elements through a 1 MiB stdio buffer and an
// XXH3 stream, then the real header at finish().
class BinaryWriter {
 public:
  BinaryWriter(const std::filesystem::path& path, PreparedKind kind, uint32_t element_bytes) : path_(path), kind_(kind), element_bytes_(element_bytes) {
    file_ = std::fopen(path.c_str(), "wb");
    if (!file_) fail("cannot create");
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
    XXH3_64bits_reset(&hash_);
    const PreparedHeader placeholder{};
    if (std::fwrite(&placeholder, sizeof placeholder, 1, file_) != 1) fail("cannot write");
  }
  ~BinaryWriter() {
    if (file_) std::fclose(file_);
  }
  BinaryWriter(const BinaryWriter&) = delete;
  BinaryWriter& operator=(const BinaryWriter&) = delete;

  void write(const void* data, uint64_t count) {
    if (count == 0) return;
    if (std::fwrite(data, element_bytes_, count, file_) != count) fail("cannot write");
    XXH3_64bits_update(&hash_, data, count * element_bytes_);
    count_ += count;
  }
  uint64_t count() const { return count_; }

  // The manifest's entry: {"path", "count" or "rows", "xxh3"}.
  nlohmann::json finish(const char* count_name = "count") {
    PreparedHeader header{};
    std::memcpy(header.magic, kPreparedMagic, 8);
    header.kind = static_cast<uint32_t>(kind_);
    header.element_bytes = element_bytes_;
    header.count = count_;
    if (std::fseek(file_, 0, SEEK_SET) != 0 || std::fwrite(&header, sizeof header, 1, file_) != 1) fail("cannot write the header of");
    if (std::fclose(file_) != 0) {
      file_ = nullptr;
      fail("cannot close");
    }
    file_ = nullptr;
    return {{"path", path_.filename().string()}, {count_name, count_}, {"xxh3", xxh3_hex(XXH3_64bits_digest(&hash_))}};
  }

 private:
  [[noreturn]] void fail(const char* what) const { throw TrainingError(std::string(what) + " " + path_.string() + ": " + std::strerror(errno)); }

  std::filesystem::path path_;
  PreparedKind kind_;
  uint32_t element_bytes_;
  std::FILE* file_ = nullptr;
  uint64_t count_ = 0;
  XXH3_state_t hash_;
};

}  // namespace funnel::train
