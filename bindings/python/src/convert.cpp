#include "convert.hpp"

#include <pybind11/numpy.h>

#include <cmath>

#include "funnel/encoding.hpp"

namespace funnel::python {

namespace {

// Module-lifetime exception types: created at import, never freed (they outlive every call).
PyObject* g_funnel_error = nullptr;
PyObject* g_corrupt_model = nullptr;
PyObject* g_unsupported_model = nullptr;
PyObject* g_training_error = nullptr;

[[noreturn]] void raise(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw py::error_already_set();
}

std::string type_name(py::handle value) { return py::str(py::type::handle_of(value).attr("__name__")); }

bool is_number(py::handle value) {
  if (PyBool_Check(value.ptr())) return false;
  if (PyLong_Check(value.ptr()) || PyFloat_Check(value.ptr())) return true;
  // numpy scalars (np.int64, np.float32, ...) but not numpy bools.
  static PyObject* numpy_number = [] {
    py::object number = py::module_::import("numpy").attr("number");
    return number.release().ptr();
  }();
  return PyObject_IsInstance(value.ptr(), numpy_number) == 1;
}

double finite_number(py::handle value, const std::string& where) {
  const double x = py::cast<double>(value);
  if (!std::isfinite(x)) raise(PyExc_ValueError, where + ": " + (std::isnan(x) ? "NaN" : "an infinite value") + " is not a feature value");
  return x;
}

}  // namespace

void register_errors(py::module_& m) {
  g_funnel_error = PyErr_NewExceptionWithDoc("funnel.FunnelError", "Base of the errors funnel raises beside ValueError, KeyError and OSError.",
                                             PyExc_Exception, nullptr);
  py::object bases = py::make_tuple(py::handle(g_funnel_error), py::handle(PyExc_ValueError));
  g_corrupt_model = PyErr_NewExceptionWithDoc("funnel.CorruptModelError",
                                              "The bytes are not a valid Funnel model file (truncated, damaged, or another format).",
                                              bases.ptr(), nullptr);
  g_unsupported_model = PyErr_NewExceptionWithDoc("funnel.UnsupportedModelError", "A valid model file that needs a newer SDK.",
                                                  bases.ptr(), nullptr);
  py::object training_bases = py::make_tuple(py::handle(g_funnel_error), py::handle(PyExc_RuntimeError));
  g_training_error = PyErr_NewExceptionWithDoc("funnel.TrainingError", "Training could not go on (the loss stopped being finite, ...).",
                                               training_bases.ptr(), nullptr);
  m.attr("FunnelError") = py::handle(g_funnel_error);
  m.attr("CorruptModelError") = py::handle(g_corrupt_model);
  m.attr("UnsupportedModelError") = py::handle(g_unsupported_model);
  m.attr("TrainingError") = py::handle(g_training_error);
}

void check(const Status& status, NotFoundIs not_found) {
  if (status) return;
  switch (status.code()) {
    case StatusCode::kOk: return;
    case StatusCode::kInvalidArgument: raise(PyExc_ValueError, status.message());
    case StatusCode::kNotFound:
      if (not_found == NotFoundIs::kFile) raise(PyExc_FileNotFoundError, status.message());
      raise(PyExc_KeyError, status.message());
    case StatusCode::kIoError: raise(PyExc_OSError, status.message());
    case StatusCode::kCorruptModel: raise(g_corrupt_model, status.message());
    case StatusCode::kUnsupported: raise(g_unsupported_model, status.message());
  }
  raise(g_funnel_error, status.to_string());
}

void raise_training_error(const std::string& message) { raise(g_training_error, message); }

void add_feature(Features* out, const std::string& name, py::handle value, const std::string& what) {
  const std::string where = what + ": feature '" + name + "'";
  if (PyUnicode_Check(value.ptr())) {
    Py_ssize_t size = 0;
    const char* text = PyUnicode_AsUTF8AndSize(value.ptr(), &size);
    if (!text) throw py::error_already_set();
    out->set(name, std::string(text, static_cast<size_t>(size)));
  } else if (is_number(value)) {
    out->set(name, finite_number(value, where));
  } else if (PyList_Check(value.ptr()) || PyTuple_Check(value.ptr()) || py::isinstance<py::array>(value)) {
    std::vector<std::string> values;
    for (py::handle v : value) {
      if (PyUnicode_Check(v.ptr())) values.push_back(py::cast<std::string>(v));
      else if (is_number(v)) values.push_back(number_to_key(finite_number(v, where)));
      else raise(PyExc_TypeError, where + ": list values must be str or numbers, not " + type_name(v));
    }
    out->set(name, std::move(values));
  } else {
    raise(PyExc_TypeError, where + " must be a str, a number or a list, not " + type_name(value));
  }
}

Features features_from(py::handle object, const std::string& what) {
  if (!PyDict_Check(object.ptr()))
    raise(PyExc_TypeError, what + ": expected a dict of feature name -> value, not " + type_name(object));
  Features features;
  PyObject *key = nullptr, *value = nullptr;
  Py_ssize_t position = 0;
  while (PyDict_Next(object.ptr(), &position, &key, &value)) {
    if (!PyUnicode_Check(key)) raise(PyExc_TypeError, what + ": feature names must be str, not " + type_name(key));
    Py_ssize_t size = 0;
    const char* name = PyUnicode_AsUTF8AndSize(key, &size);
    if (!name) throw py::error_already_set();
    add_feature(&features, std::string(name, static_cast<size_t>(size)), value, what);
  }
  return features;
}

std::vector<std::string> strings_from(py::handle object, const std::string& what) {
  std::vector<std::string> out;
  if (object.is_none()) return out;
  if (PyUnicode_Check(object.ptr())) raise(PyExc_TypeError, what + ": expected a list of str, not one str");
  if (!PyList_Check(object.ptr()) && !PyTuple_Check(object.ptr()) && !py::isinstance<py::array>(object) &&
      !PyAnySet_Check(object.ptr()) && !py::hasattr(object, "tolist"))
    raise(PyExc_TypeError, what + ": expected a list of str, not " + type_name(object));
  for (py::handle v : object) {
    if (!PyUnicode_Check(v.ptr())) raise(PyExc_TypeError, what + ": expected str keys, not " + type_name(v));
    out.push_back(py::cast<std::string>(v));
  }
  return out;
}

}  // namespace funnel::python
