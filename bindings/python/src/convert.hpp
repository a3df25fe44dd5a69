// What the Python module's C++ files share: SDK statuses and trainer errors as Python exceptions, and
// Python values (dicts, lists, DataFrame rows) as the SDK's raw features.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "funnel/features.hpp"
#include "funnel/status.hpp"

namespace funnel::python {

namespace py = pybind11;

// Creates funnel.FunnelError and its subclasses in the module (once, at import).
void register_errors(py::module_& m);

// What a kNotFound means where it arises: a path (FileNotFoundError) or a key (KeyError).
enum class NotFoundIs { kFile, kKey };

// Raises the Python exception for a status that is not ok, carrying the SDK's message:
// kInvalidArgument -> ValueError, kNotFound -> FileNotFoundError or KeyError, kIoError -> OSError,
// kCorruptModel -> funnel.CorruptModelError, kUnsupported -> funnel.UnsupportedModelError. Needs the GIL.
void check(const Status& status, NotFoundIs not_found = NotFoundIs::kKey);

// funnel.TrainingError (the loss stopped being finite, an exported model failed to load).
[[noreturn]] void raise_training_error(const std::string& message);

// A dict of feature name -> value: str, a finite number (int, float, numpy scalar; bool is refused), or a
// list/tuple/array of str or finite numbers. `what` names the argument in errors ("user", "users[3]").
Features features_from(py::handle object, const std::string& what);
// One value of feature `name` (the rules above), added to `out`.
void add_feature(Features* out, const std::string& name, py::handle value, const std::string& what);
// A list/tuple/array of str (item keys); None is empty.
std::vector<std::string> strings_from(py::handle object, const std::string& what);

// A Python object passed through as it is, shown in signatures (help(), the stubs' tests) by the type
// Tag::name names: pybind11 would otherwise print "handle" for arguments this module checks itself.
template <typename Tag>
struct Typed {
  py::object value;
  operator py::handle() const { return value; }
};

struct UserType {
  static constexpr auto name = py::detail::const_name("dict[str, str | float | list[str]]");
};
struct OptionalUserType {
  static constexpr auto name = py::detail::const_name("dict[str, str | float | list[str]] | None");
};
struct KeysType {
  static constexpr auto name = py::detail::const_name("list[str] | None");
};
struct UsersType {
  static constexpr auto name = py::detail::const_name("list[dict[str, str | float | list[str]]] | pandas.DataFrame");
};
struct RecommendationsType {
  static constexpr auto name = py::detail::const_name("funnel.Recommendations");
};
struct CascadeResultType {
  static constexpr auto name = py::detail::const_name("funnel.CascadeResult");
};
struct SourceType {
  static constexpr auto name = py::detail::const_name("str | os.PathLike | bytes");
};
struct PathType {
  static constexpr auto name = py::detail::const_name("str | os.PathLike");
};
struct UpsertType {
  static constexpr auto name = py::detail::const_name("dict[str, dict[str, str | float | list[str]]] | None");
};
using UserArg = Typed<UserType>;
using SourceArg = Typed<SourceType>;
using PathArg = Typed<PathType>;
using UpsertArg = Typed<UpsertType>;
using OptionalUserArg = Typed<OptionalUserType>;
using KeysArg = Typed<KeysType>;
using UsersArg = Typed<UsersType>;
using RecommendationsOut = Typed<RecommendationsType>;
using CascadeResultOut = Typed<CascadeResultType>;

}  // namespace funnel::python

namespace pybind11::detail {
template <typename Tag>
struct type_caster<funnel::python::Typed<Tag>> {
  PYBIND11_TYPE_CASTER(funnel::python::Typed<Tag>, Tag::name);
  bool load(handle source, bool) {
    value.value = reinterpret_borrow<object>(source);
    return true;
  }
  static handle cast(const funnel::python::Typed<Tag>& source, return_value_policy, handle) { return source.value.inc_ref(); }
};
}  // namespace pybind11::detail
