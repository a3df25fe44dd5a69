// The distributed tests' main: run by ctest alone (one process) and under mpirun -np 2. Every test case is
// collective (each rank runs the same cases in the same order); MPI ends after the last.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "train/distributed/communicator.hpp"

int main(int argc, char** argv) {
  const int code = Catch::Session().run(argc, argv);
  funnel::train::finalize_world();
  return code;
}
