// funnel.Model: the SDK's Model (sdk/include/funnel/model.hpp) from Python. Arguments are converted with the
// GIL held; the SDK call itself runs with the GIL released, so threads that share one model score in
// parallel. Results are numpy arrays in small dataclasses (funnel/_results.py); the catalogue and the
// tensors are read-only numpy views of the model's memory (the mapped file), which keep the model alive.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <functional>
#include <memory>

#include "convert.hpp"
#include "funnel/funnel.hpp"

namespace funnel::python {

namespace {

using ModelPtr = std::shared_ptr<const Model>;

// The dataclasses of funnel/_results.py, looked up once (the package imports that module before this one
// is used) and kept for the module's lifetime.
py::object result_class(const char* name) {
  static PyObject* module = py::module_::import("funnel._results").release().ptr();
  return py::handle(module).attr(name);
}

py::array_t<float> floats(const float* data, size_t n) {
  py::array_t<float> out(static_cast<py::ssize_t>(n));
  std::copy(data, data + n, out.mutable_data());
  return out;
}

py::array keys_array(std::vector<py::ssize_t> shape) { return py::array(py::dtype("O"), std::move(shape), std::vector<py::ssize_t>{}); }
py::array keys_array(size_t n) { return keys_array(std::vector<py::ssize_t>{static_cast<py::ssize_t>(n)}); }

void set_key(py::array& keys, size_t i, std::string_view key) {
  // A key that is not valid UTF-8 (the trainer keeps a file's bytes) comes back with its bad bytes as lone
  // surrogates, as os.fsdecode does, instead of raising UnicodeDecodeError on every result that holds it.
  PyObject* text = PyUnicode_DecodeUTF8(key.data(), static_cast<Py_ssize_t>(key.size()), "surrogateescape");
  if (!text) throw py::error_already_set();
  // An object array holds references: the new one moves in (the slot held None).
  PyObject** slot = static_cast<PyObject**>(keys.mutable_data()) + i;
  Py_XDECREF(*slot);
  *slot = text;
}

// A read-only numpy view of `data` inside the model whose Python object is `owner`.
py::array view(py::handle owner, const py::dtype& dtype, std::vector<py::ssize_t> shape, const void* data) {
  py::array out(dtype, std::move(shape), {}, data, owner);
  py::detail::array_proxy(out.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
  return out;
}

py::dtype dtype_of(std::string_view name) {
  if (name == "f16") return py::dtype("float16");
  if (name == "i8") return py::dtype("int8");
  return py::dtype("float32");
}

RecommendationsOut recommendations(const std::vector<Recommendation>& top) {
  py::array keys = keys_array(top.size());
  py::array_t<int64_t> indices(static_cast<py::ssize_t>(top.size()));
  py::array_t<float> scores(static_cast<py::ssize_t>(top.size()));
  for (size_t i = 0; i < top.size(); ++i) {
    set_key(keys, i, top[i].key);
    indices.mutable_data()[i] = top[i].index;
    scores.mutable_data()[i] = top[i].score;
  }
  return {result_class("Recommendations")(keys, indices, scores)};
}

// Users from a list of dicts, or from a DataFrame (one row per user, one column per feature).
std::vector<Features> users_from(py::handle users) {
  std::vector<Features> out;
  if (py::hasattr(users, "columns") && py::hasattr(users, "iloc")) {
    const py::list names = users.attr("columns").attr("tolist")();
    std::vector<std::string> features;
    std::vector<py::list> columns;
    for (py::handle name : names) {
      if (!PyUnicode_Check(name.ptr())) throw py::type_error("users: DataFrame column names must be str");
      features.push_back(py::cast<std::string>(name));
      columns.push_back(users.attr("__getitem__")(name).attr("tolist")());
    }
    const size_t rows = py::len(users);
    out.resize(rows);
    for (size_t r = 0; r < rows; ++r)
      for (size_t c = 0; c < features.size(); ++c) add_feature(&out[r], features[c], columns[c][r], "users row " + std::to_string(r));
    return out;
  }
  if (PyDict_Check(users.ptr()) || PyUnicode_Check(users.ptr()))
    throw py::type_error("users: expected a list of dicts or a DataFrame");
  size_t r = 0;
  for (py::handle user : users) out.push_back(features_from(user, "users[" + std::to_string(r++) + "]"));
  return out;
}

std::vector<std::pair<std::string, Features>> upserts_from(py::handle upsert) {
  std::vector<std::pair<std::string, Features>> out;
  if (upsert.is_none()) return out;
  if (PyDict_Check(upsert.ptr())) {
    for (auto [key, features] : py::reinterpret_borrow<py::dict>(upsert)) {
      if (!PyUnicode_Check(key.ptr())) throw py::type_error("upsert: item keys must be str");
      const std::string k = py::cast<std::string>(key);
      out.emplace_back(k, features_from(features, "upsert['" + k + "']"));
    }
    return out;
  }
  throw py::type_error("upsert: expected a dict of item key -> features");
}

struct PyModel {
  ModelPtr model;

  const Model& get() const { return *model; }
};

PyModel load(SourceArg source_arg) {
  py::handle source = source_arg;
  std::unique_ptr<Model> model;
  Status status;
  if (PyBytes_Check(source.ptr()) || PyByteArray_Check(source.ptr()) || PyMemoryView_Check(source.ptr())) {
    // Only a C-contiguous buffer is one run of bytes (a strided memoryview such as m[::-1] is not).
    Py_buffer view;
    if (PyObject_GetBuffer(source.ptr(), &view, PyBUF_C_CONTIGUOUS) != 0) {
      PyErr_Clear();
      throw py::type_error("Model.load: the buffer is not C-contiguous; pass bytes(...) of it");
    }
    const std::unique_ptr<Py_buffer, void (*)(Py_buffer*)> held(&view, PyBuffer_Release);
    const size_t size = static_cast<size_t>(view.len);
    py::gil_scoped_release release;
    status = Model::load_bytes(view.buf, size, &model);
  } else {
    py::object fspath = py::module_::import("os").attr("fspath");
    py::object path_object;
    try {
      path_object = fspath(source);
    } catch (py::error_already_set&) {
      throw py::type_error("Model.load: expected a path (str or os.PathLike) or bytes, not " +
                           py::cast<std::string>(py::type::handle_of(source).attr("__name__")));
    }
    const std::string path = py::cast<std::string>(path_object);
    py::gil_scoped_release release;
    status = Model::load_file(path, &model);
  }
  check(status, NotFoundIs::kFile);
  return PyModel{std::move(model)};
}

py::dict inspect(const PyModel& self) {
  const Model& m = self.get();
  py::dict out;
  out["format_version"] = m.format_version();
  out["producer"] = std::string(m.producer());
  out["byte_size"] = m.byte_size();
  out["has_retrieval"] = m.has_retrieval();
  out["has_pre_ranking"] = m.has_pre_ranking();
  out["has_ranking"] = m.has_ranking();
  py::list features;
  for (size_t f = 0; f < m.feature_count(); ++f) {
    const FeatureInfo info = m.feature_info(f);
    py::dict d;
    d["name"] = info.name;
    d["kind"] = info.kind;
    d["cardinality"] = info.cardinality;
    d["vocabulary_size"] = info.vocabulary_size;
    d["hash_buckets"] = info.hash_buckets;
    features.append(d);
  }
  out["features"] = features;
  py::list tensors;
  for (size_t t = 0; t < m.tensor_count(); ++t) {
    const TensorInfo info = m.tensor_info(t);
    py::dict d;
    d["name"] = std::string(info.name);
    d["dtype"] = std::string(info.dtype);
    d["shape"] = py::tuple(py::cast(info.shape));
    d["bytes"] = info.bytes;
    tensors.append(d);
  }
  out["tensors"] = tensors;
  if (m.has_retrieval()) {
    out["catalogue_size"] = m.catalogue_size();
    out["embedding_dim"] = m.embedding_dim();
    out["catalogue_precision"] = std::string(precision_name(m.catalogue_precision()));
  }
  if (m.has_ranking() || m.has_pre_ranking()) out["item_table_size"] = m.item_table_size();
  py::dict metadata;
  for (const auto& [key, value] : m.metadata()) metadata[py::str(key)] = value;
  out["metadata"] = metadata;
  out["kernels"] = std::string(kernels::isa());
  return out;
}

RecommendationsOut retrieve(const PyModel& self, UserArg user, size_t k, KeysArg exclude, KeysArg allow, size_t threads) {
  const Features features = features_from(user, "user");
  RetrieveOptions options;
  options.k = k;
  options.exclude = strings_from(exclude, "exclude");
  options.threads = threads;
  std::vector<std::string> allowed = strings_from(allow, "allow");
  std::vector<Recommendation> top;
  // allow=None leaves every item in; an empty list allows none (the SDK reads an empty list as "no restriction").
  if (!allow.value.is_none() && allowed.empty() && self.get().has_retrieval()) return recommendations(top);
  if (allowed.empty() || !self.get().has_retrieval()) {
    Status status;
    {
      py::gil_scoped_release release;
      status = self.get().retrieve(features, options, &top);
    }
    check(status);
    return recommendations(top);
  }
  // An allow list: the cascade with its later stages left out is retrieval over the allowed rows.
  CascadeOptions cascade;
  cascade.k = cascade.retrieve_k = k;
  cascade.exclude = std::move(options.exclude);
  cascade.allow = std::move(allowed);
  cascade.threads = threads;
  cascade.skip_pre_ranking = cascade.skip_ranking = true;
  CascadeResult result;
  Status status;
  {
    py::gil_scoped_release release;
    status = self.get().recommend(features, cascade, &result);
    if (status) {
      for (const CascadeItem& item : result.items) {
        const int64_t index = self.get().find_item(item.key);
        top.push_back({item.key, static_cast<uint32_t>(index), item.score});
      }
    }
  }
  check(status);
  return recommendations(top);
}

RecommendationsOut retrieve_batch(const PyModel& self, UsersArg users, size_t k, KeysArg exclude, size_t threads) {
  const std::vector<Features> features = users_from(users);
  RetrieveOptions options;
  options.k = k;
  options.exclude = strings_from(exclude, "exclude");
  options.threads = threads;
  std::vector<std::vector<Recommendation>> top;
  Status status;
  {
    py::gil_scoped_release release;
    status = self.get().retrieve_batch(features, options, &top);
  }
  check(status);
  // One row per user; a row shorter than the longest (too few items left) is padded with None, -1, NaN.
  size_t width = 0;
  for (const auto& row : top) width = std::max(width, row.size());
  const py::ssize_t n = static_cast<py::ssize_t>(top.size()), w = static_cast<py::ssize_t>(width);
  py::array keys = keys_array(std::vector<py::ssize_t>{n, w});
  py::array_t<int64_t> indices({n, w});
  py::array_t<float> scores({n, w});
  for (size_t u = 0; u < top.size(); ++u)
    for (size_t i = 0; i < width; ++i) {
      const size_t at = u * width + i;
      if (i < top[u].size()) {
        set_key(keys, at, top[u][i].key);
        indices.mutable_data()[at] = top[u][i].index;
        scores.mutable_data()[at] = top[u][i].score;
      } else {
        indices.mutable_data()[at] = -1;
        scores.mutable_data()[at] = NAN;
      }
    }
  return {result_class("Recommendations")(keys, indices, scores)};
}

using RankCall = Status (Model::*)(const Features&, std::span<const std::string>, std::span<const std::string>, std::vector<float>*) const;

py::array_t<float> score_candidates(const PyModel& self, RankCall call, OptionalUserArg user, KeysArg behaviours, KeysArg candidates) {
  const Features features = user.value.is_none() ? Features{} : features_from(user, "user");
  const std::vector<std::string> history = strings_from(behaviours, "behaviours");
  const std::vector<std::string> items = strings_from(candidates, "candidates");
  std::vector<float> probabilities;
  Status status;
  {
    py::gil_scoped_release release;
    status = (self.get().*call)(features, history, items, &probabilities);
  }
  check(status);
  return floats(probabilities.data(), probabilities.size());
}

CascadeResultOut recommend(const PyModel& self, OptionalUserArg user, size_t k, size_t retrieve_k, size_t prerank_k, KeysArg behaviours,
                           KeysArg candidates, KeysArg exclude, KeysArg allow, size_t threads, bool skip_pre_ranking, bool skip_ranking) {
  const Features features = user.value.is_none() ? Features{} : features_from(user, "user");
  CascadeOptions options;
  options.k = k;
  options.retrieve_k = retrieve_k;
  options.prerank_k = prerank_k;
  options.behaviours = strings_from(behaviours, "behaviours");
  options.candidates = strings_from(candidates, "candidates");
  options.exclude = strings_from(exclude, "exclude");
  options.allow = strings_from(allow, "allow");
  options.threads = threads;
  options.skip_pre_ranking = skip_pre_ranking;
  options.skip_ranking = skip_ranking;
  CascadeResult result;
  Status status;
  {
    py::gil_scoped_release release;
    status = self.get().recommend(features, options, &result);
  }
  check(status);
  // allow=None leaves every item in; an empty list allows none (the SDK reads an empty list as "no restriction").
  if (!allow.value.is_none() && options.allow.empty()) result.items.clear();
  const size_t n = result.items.size();
  py::array keys = keys_array(n);
  py::array_t<float> scores(static_cast<py::ssize_t>(n)), retrieval_scores(static_cast<py::ssize_t>(n));
  for (size_t i = 0; i < n; ++i) {
    set_key(keys, i, result.items[i].key);
    scores.mutable_data()[i] = result.items[i].score;
    retrieval_scores.mutable_data()[i] = result.items[i].retrieval_score;
  }
  py::list stages;
  for (const StageReport& s : result.stages)
    stages.append(result_class("StageReport")(std::string(s.stage), s.scored, s.kept, s.milliseconds));
  return {result_class("CascadeResult")(keys, scores, retrieval_scores, stages, result.milliseconds)};
}

py::array_t<float> embed(const PyModel& self, UserArg features_object, bool item) {
  const Features features = features_from(features_object, item ? "item" : "user");
  std::vector<float> embedding;
  Status status;
  {
    py::gil_scoped_release release;
    status = item ? self.get().item_embedding(features, &embedding) : self.get().user_embedding(features, &embedding);
  }
  check(status);
  return floats(embedding.data(), embedding.size());
}

PyModel update_catalogue(const PyModel& self, UpsertArg upsert, KeysArg remove) {
  CatalogueUpdate update;
  update.upsert = upserts_from(upsert);
  update.remove = strings_from(remove, "remove");
  std::unique_ptr<Model> updated;
  Status status;
  {
    py::gil_scoped_release release;
    status = self.get().update_catalogue(update, &updated);
  }
  check(status);
  return PyModel{std::move(updated)};
}

py::object catalogue(py::object self_object) {
  const Model& m = self_object.cast<const PyModel&>().get();
  if (!m.has_retrieval()) return py::none();
  const EmbeddingRows& rows = m.catalogue_rows();
  const char* dtype = rows.precision == Precision::kF16 ? "float16" : rows.precision == Precision::kI8 ? "int8" : "float32";
  return view(self_object, py::dtype(dtype), {static_cast<py::ssize_t>(rows.rows), static_cast<py::ssize_t>(rows.dim)}, rows.data);
}

py::object catalogue_scales(py::object self_object) {
  const Model& m = self_object.cast<const PyModel&>().get();
  if (!m.has_retrieval() || !m.catalogue_rows().scales) return py::none();
  return view(self_object, py::dtype("float32"), {static_cast<py::ssize_t>(m.catalogue_size())}, m.catalogue_rows().scales);
}

py::dict tensors(py::object self_object) {
  const Model& m = self_object.cast<const PyModel&>().get();
  py::dict out;
  for (size_t t = 0; t < m.tensor_count(); ++t) {
    const TensorInfo info = m.tensor_info(t);
    std::vector<py::ssize_t> shape(info.shape.begin(), info.shape.end());
    out[py::str(std::string(info.name))] = view(self_object, dtype_of(info.dtype), std::move(shape), info.data);
  }
  return out;
}

}  // namespace

const Model& model_of(py::handle model) { return model.cast<const PyModel&>().get(); }

void register_serving(py::module_& m) {
  py::class_<PyModel>(m, "Model", R"(A loaded Funnel model file: verified once, immutable, safe to share between threads.

Load one with Model.load(path_or_bytes). Every scoring call releases the GIL while the SDK works, so Python
threads sharing one model score in parallel. Errors are raised with the SDK's message: ValueError (bad
arguments: a missing feature, k = 0, NaN), KeyError (an unknown item key), FileNotFoundError,
funnel.CorruptModelError (a damaged file).)")
      .def_static("load", &load, py::arg("source"), R"(Load a model from a path (memory-mapped, read-only) or from bytes (copied).

source: str or os.PathLike (a .funnel file), or bytes / bytearray / memoryview holding one.
Raises FileNotFoundError, OSError, funnel.CorruptModelError, funnel.UnsupportedModelError.)")
      .def("inspect", &inspect, "The file's facts: format version, producer, stages, features, tensors, catalogue, metadata, kernels.")
      .def("verify", [](const PyModel& self) {
            Status status;
            {
              py::gil_scoped_release release;
              status = self.get().verify();
            }
            check(status);
          },
          "The checks loading leaves out, over every item (O(items)). Raises funnel.CorruptModelError.")
      .def("retrieve", &retrieve, py::arg("user"), py::arg("k") = 10, py::kw_only(), py::arg("exclude") = py::none(),
           py::arg("allow") = py::none(), py::arg("threads") = 1,
           R"(The k catalogue items with the highest scores u·v for one user (the retrieval stage).

user: dict of raw feature name -> value: str, a finite number, or a list of str (multi-valued features).
      Every feature the user tower reads must be given; values outside the vocabulary are allowed.
k: how many items (at most the catalogue's size).
exclude: item keys never returned (items the user has seen); unknown keys are ignored.
allow: when given, only these item keys may be returned; unknown keys are ignored.
threads: threads scanning the catalogue (1: the calling thread; 0: every core). The answer does not change.

Returns funnel.Recommendations: keys (numpy object array of str), indices (int64 catalogue rows) and
scores (float32), best first.
Raises ValueError (a missing feature, k = 0, NaN), TypeError (a value of the wrong type).

>>> model.retrieve({"user_id": "u42", "age": 31, "region": "r3", "device": "ios"}, k=10, exclude=["i17"]).keys)")
      .def("retrieve_batch", &retrieve_batch, py::arg("users"), py::arg("k") = 10, py::kw_only(), py::arg("exclude") = py::none(),
           py::arg("threads") = 1,
           R"(retrieve() for many users in one pass over the catalogue (much faster per user than one call each).

users: a list of feature dicts, or a pandas DataFrame with one row per user and one column per feature.
exclude: item keys never returned, for every user.
Returns funnel.Recommendations whose arrays are [users, k]: row u holds user u's items, best first.)")
      .def("rank", [](const PyModel& self, OptionalUserArg user, KeysArg behaviours, KeysArg candidates) {
            return score_candidates(self, &Model::rank, user, behaviours, candidates);
          },
          py::arg("user") = py::none(), py::kw_only(), py::arg("behaviours") = py::none(), py::arg("candidates") = py::none(),
          R"(The ranking stage: click probabilities of `candidates` (item keys), in their order (float32 array).

user: the user's raw features (dict; None for none). behaviours: item keys the user interacted with,
oldest first (unknown keys count as out-of-vocabulary). An unknown candidate raises KeyError.)")
      .def("prerank", [](const PyModel& self, OptionalUserArg user, KeysArg behaviours, KeysArg candidates) {
            return score_candidates(self, &Model::prerank, user, behaviours, candidates);
          },
          py::arg("user") = py::none(), py::kw_only(), py::arg("behaviours") = py::none(), py::arg("candidates") = py::none(),
          "The pre-ranking stage (the AutoFAS student): as rank(), with the pre-ranking stage's parameters.")
      .def("recommend", &recommend, py::arg("user") = py::none(), py::kw_only(), py::arg("k") = 10, py::arg("retrieve_k") = 200,
           py::arg("prerank_k") = 50, py::arg("behaviours") = py::none(), py::arg("candidates") = py::none(),
           py::arg("exclude") = py::none(), py::arg("allow") = py::none(), py::arg("threads") = 1, py::arg("skip_pre_ranking") = false,
           py::arg("skip_ranking") = false,
           R"(The whole cascade in one call: retrieve retrieve_k, pre-rank to prerank_k, rank, keep k.

Works with whichever stages the file holds; without retrieval, `candidates` are scored by the first stage.
behaviours: item keys, oldest first, for the pre-ranking and ranking stages. exclude / allow as in retrieve().
skip_pre_ranking / skip_ranking leave a stage the file holds out (to measure what it adds).
Returns funnel.CascadeResult: keys, scores (the last stage's), retrieval_scores (NaN without retrieval),
stages (one funnel.StageReport per stage run: stage, scored, kept, milliseconds) and milliseconds.)")
      .def("user_embedding", [](const PyModel& self, UserArg user) { return embed(self, user, false); }, py::arg("user"),
           "The user tower's embedding of raw user features (float32 array of embedding_dim).")
      .def("item_embedding", [](const PyModel& self, UserArg item) { return embed(self, item, true); }, py::arg("item"),
           "An item's embedding from its raw features through the item tower the file ships: for an item the catalogue\n"
           "lacks (cold start), in the same space as the catalogue. For a catalogue item it equals its row.")
      .def("update_catalogue", &update_catalogue, py::kw_only(), py::arg("upsert") = py::none(), py::arg("remove") = py::none(),
           R"(A new model with items added, replaced or removed, without retraining; this one is unchanged.

upsert: dict of item key -> raw item features (embedded by the file's item tower; new keys come last).
remove: item keys to remove (an unknown key raises ValueError). Batch changes: each call rebuilds the file.)")
      .def("save", [](const PyModel& self, PathArg path) {
            const std::string p = py::cast<std::string>(py::module_::import("os").attr("fspath")(path));
            Status status;
            {
              py::gil_scoped_release release;
              status = self.get().save(p);
            }
            check(status, NotFoundIs::kFile);
          },
          py::arg("path"), "Write the model's bytes to `path` atomically (a temporary file beside it, then a rename).")
      .def("to_bytes", [](const PyModel& self) {
            const auto bytes = self.get().bytes();
            return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
          },
          "The model file's bytes (a copy).")
      .def_property_readonly("has_retrieval", [](const PyModel& self) { return self.get().has_retrieval(); })
      .def_property_readonly("has_pre_ranking", [](const PyModel& self) { return self.get().has_pre_ranking(); })
      .def_property_readonly("has_ranking", [](const PyModel& self) { return self.get().has_ranking(); })
      .def_property_readonly("catalogue_size", [](const PyModel& self) { return self.get().catalogue_size(); })
      .def_property_readonly("embedding_dim", [](const PyModel& self) { return self.get().embedding_dim(); })
      .def_property_readonly("metadata", [](const PyModel& self) {
        py::dict out;
        for (const auto& [key, value] : self.get().metadata()) out[py::str(key)] = value;
        return out;
      })
      .def_property_readonly("item_keys", [](const PyModel& self) {
        const Model& m = self.get();
        py::array keys = keys_array(m.has_retrieval() ? m.catalogue_size() : 0);
        for (size_t i = 0; i < static_cast<size_t>(keys.size()); ++i) set_key(keys, i, m.item_key(i));
        return keys;
      }, "The catalogue's item keys, in row order (numpy object array).")
      .def_property_readonly("catalogue", &catalogue,
                             "The catalogue's rows [items, dim] as the file stores them (float32, float16, or int8 with\n"
                             "catalogue_scales): a read-only view of the model's memory, no copy. None without retrieval.")
      .def_property_readonly("catalogue_scales", &catalogue_scales, "An int8 catalogue's per-row scales (read-only view), else None.")
      .def("tensors", &tensors, "Every parameter tensor by name (\"user/w0\", ...) as a read-only numpy view of the model's memory.")
      .def("__repr__", [](const PyModel& self) {
        const Model& m = self.get();
        std::string stages;
        if (m.has_retrieval()) stages += "retrieval (" + std::to_string(m.catalogue_size()) + " items)";
        if (m.has_pre_ranking()) stages += std::string(stages.empty() ? "" : ", ") + "pre-ranking";
        if (m.has_ranking()) stages += std::string(stages.empty() ? "" : ", ") + "ranking";
        return "<funnel.Model: " + stages + ", " + std::to_string(m.byte_size()) + " bytes>";
      });
}

}  // namespace funnel::python
