// The CLI's commands that read a model verify it first (Model::verify: checksums, key tables, item ids) and
// refuse a damaged file, naming the tensor; --no-verify answers from it as loaded. `funnel inspect` prints
// what verify() found; `funnel eval` verifies too. Runs the built `funnel` binary on copies of the golden files.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "funnel_generated.h"
#include "support.hpp"

using Catch::Matchers::Contains;

namespace {

const std::string kGolden = std::string(FUNNEL_SOURCE_DIR) + "/tests/data/golden";

struct Run {
  int status;
  std::string output;  // stdout and stderr
};

Run run(const std::string& arguments) {
  const std::string command = std::string(FUNNEL_CLI) + " " + arguments + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe);
  std::string output;
  char buffer[4096];
  while (const size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace

TEST_CASE("CLI: commands verify the model first and name a damaged tensor; --no-verify skips the check", "[cli][checksums]") {
  const funnel::test::TempDir folder;  // removed however the test ends
  std::ifstream in(kGolden + "/three-stages-v3.funnel", std::ios::binary);
  REQUIRE(in.good());
  std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const funnel::fb::Model* root = funnel::fb::GetModel(bytes.data());
  const funnel::fb::Tensor* weight = nullptr;
  for (const funnel::fb::Tensor* tensor : *root->tensors())
    if (tensor->name()->str() == "ranking/dense0/weight") weight = tensor;
  REQUIRE(weight);
  bytes[static_cast<size_t>(weight->data()->data() - bytes.data()) + 5] ^= 0x20;
  const std::string damaged = folder.file("damaged.funnel");
  std::ofstream(damaged, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  const std::string user = "--user '{\"user_id\":\"u3\",\"age\":41,\"region\":\"r2\",\"device\":\"ios\"}'";
  const std::string named = "tensor 'ranking/dense0/weight' fails its checksum";

  for (const std::string& command : {"rank --model " + damaged + " " + user + " --candidates i5,i9",
                                     "prerank --model " + damaged + " " + user + " --candidates i5,i9",
                                     "recommend --model " + damaged + " " + user + " -k 3"}) {
    INFO(command);
    const Run refused = run(command);
    CHECK(refused.status != 0);
    CHECK_THAT(refused.output, Contains(named) && Contains("--no-verify"));
    const Run answered = run(command + " --no-verify");
    INFO(answered.output);
    CHECK(answered.status == 0);
  }
  // eval verifies before it reads the dataset: refused with the damaged tensor named; with --no-verify it gets
  // past the model and fails on the data (an empty description here) instead.
  const std::string data = folder.write("data.json", "{}");
  const Run evaluated = run("eval --data " + data + " --model " + damaged);
  CHECK(evaluated.status != 0);
  CHECK_THAT(evaluated.output, Contains(named) && Contains("--no-verify"));
  const Run unverified = run("eval --data " + data + " --model " + damaged + " --no-verify");
  INFO(unverified.output);
  CHECK(unverified.status != 0);
  CHECK_THAT(unverified.output, !Contains("checksum") && Contains("data.json"));
  const Run inspected = run("inspect " + damaged);
  CHECK(inspected.status == 1);
  CHECK_THAT(inspected.output, Contains("verified        no: " + named));
  CHECK_THAT(run("inspect " + damaged + " --no-verify").output, Contains("verified        skipped"));
  const Run good = run("inspect " + kGolden + "/three-stages-v3.funnel");
  CHECK(good.status == 0);
  CHECK_THAT(good.output, Contains("verified        yes: every tensor, key table and the whole file match their checksums"));
  const Run old = run("inspect " + kGolden + "/three-stages.funnel");
  CHECK(old.status == 0);
  CHECK_THAT(old.output, Contains("format version  2") && Contains("verified        yes: no checksums"));
}
