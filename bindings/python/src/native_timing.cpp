// The baseline of bench/bench_python.py: the SDK calls that funnel.Model.retrieve and retrieve_batch make,
// timed in a C++ loop in this same binary (same kernels, same model in memory), with no Python around
// them. The difference between these and the Python calls' times is the binding's per-call overhead.
#include <pybind11/pybind11.h>

#include <chrono>
#include <functional>
#include <memory>

#include "convert.hpp"
#include "funnel/model.hpp"

namespace funnel::python {

// From serving.cpp: the model behind a funnel.Model object.
const Model& model_of(py::handle model);

namespace {

// Runs `call` once (warm-up), then `repeats` times, with the GIL released; the Status is checked (which sets a
// Python error) only once the GIL is held again.
double seconds_per_call(size_t repeats, const std::function<Status()>& call) {
  Status status;
  double seconds = 0;
  {
    py::gil_scoped_release release;
    status = call();  // warm-up, and the errors
    if (status.is_ok()) {
      const auto start = std::chrono::steady_clock::now();
      for (size_t r = 0; r < repeats && status.is_ok(); ++r) status = call();
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  }
  check(status);
  return seconds / static_cast<double>(repeats);
}

}  // namespace

void register_native_timing(py::module_& m) {
  m.def(
      "_native_retrieve_seconds",
      [](py::handle model_object, py::handle user, size_t k, size_t repeats) {
        const Model& model = model_of(model_object);
        const Features features = features_from(user, "user");
        RetrieveOptions options;
        options.k = k;
        std::vector<Recommendation> out;
        return seconds_per_call(repeats, [&] { return model.retrieve(features, options, &out); });
      },
      py::arg("model"), py::arg("user"), py::arg("k"), py::arg("repeats"),
      "Seconds per Model::retrieve call in a C++ loop (bench/bench_python.py's native baseline).");
  m.def(
      "_native_retrieve_batch_seconds",
      [](py::handle model_object, py::handle users, size_t k, size_t repeats) {
        const Model& model = model_of(model_object);
        std::vector<Features> features;
        size_t u = 0;
        for (py::handle user : users) features.push_back(features_from(user, "users[" + std::to_string(u++) + "]"));
        RetrieveOptions options;
        options.k = k;
        std::vector<std::vector<Recommendation>> out;
        return seconds_per_call(repeats, [&] { return model.retrieve_batch(features, options, &out); });
      },
      py::arg("model"), py::arg("users"), py::arg("k"), py::arg("repeats"),
      "Seconds per Model::retrieve_batch call in a C++ loop (bench/bench_python.py's native baseline).");
}

}  // namespace funnel::python
