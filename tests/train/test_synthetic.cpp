// The built-in generator's output is fixed for given options and seed: tests, studies and the docs' figures
// depend on it. The fingerprints below are those of the files the generator wrote before its buffered writer
// and binary-search sampler (commit c418a81); any change to the draws or the formatting changes them.
#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>

#include "support.hpp"
#include "train/data/synthetic.hpp"

using namespace funnel::train;

namespace {

// FNV-1a, 64 bits, of a file's bytes.
uint64_t fingerprint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  uint64_t h = 0xcbf29ce484222325ull;
  for (std::istreambuf_iterator<char> it(in), end; it != end; ++it) {
    h ^= static_cast<uint8_t>(*it);
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

TEST_CASE("Synthetic: the generator's files are byte for byte those of earlier versions", "[synthetic]") {
  funnel::test::TempDir dir;
  SyntheticOptions options;
  options.users = 300;
  options.items = 200;
  options.seed = 9;
  write_synthetic_dataset(dir.file("plain"), options);
  CHECK(fingerprint(dir.file("plain/users.csv")) == 0xd5fcd9bdaec7af1dull);
  CHECK(fingerprint(dir.file("plain/items.csv")) == 0x38cad8463111308aull);
  CHECK(fingerprint(dir.file("plain/interactions.csv")) == 0xdabd02c14ebec467ull);
  options.pairing = 0.4;
  write_synthetic_dataset(dir.file("paired"), options);
  CHECK(fingerprint(dir.file("paired/interactions.csv")) == 0x58c25ae469c141bfull);
}
