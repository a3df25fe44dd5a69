// The compiled half of the `funnel` package (funnel/__init__.py is the other): the SDK's model and the
// trainer's loops. serving.cpp binds funnel.Model, training.cpp the training calls, convert.cpp the
// errors and feature values both use.
#include <pybind11/pybind11.h>

#include "convert.hpp"
#include "funnel/kernels.hpp"

namespace funnel::python {
void register_serving(py::module_& m);
void register_training(py::module_& m);
void register_native_timing(py::module_& m);
}  // namespace funnel::python

PYBIND11_MODULE(_funnel, m) {
  namespace py = pybind11;
  m.doc() = "Funnel's C++ SDK and trainer (import funnel, not this module).";
  funnel::python::register_errors(m);
  funnel::python::register_serving(m);
  funnel::python::register_training(m);
  funnel::python::register_native_timing(m);
  m.attr("kernels") = py::str(funnel::kernels::isa());
}
