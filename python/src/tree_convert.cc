// Python pytrees to cairn Trees and back, and Python values to JSON and back.
//
// Containers: dict (str keys) <-> dict, list <-> list, tuple (namedtuples too) <-> tuple, None <-> None.
// Leaves: numpy arrays and numpy scalars, anything with __dlpack__ or __array__ (torch tensors), Python bool, int,
// float and str, cairn.ArraySpec (a restore target, as jax.ShapeDtypeStruct), and `...` (Orbax's PLACEHOLDER).
// A jax.Array spanning processes is this process's shards; a target whose sharding spans processes, the boxes of
// this process's devices. Restored arrays are numpy arrays (cairn._tree.Shards for the boxes of a sharded target),
// scalars are Python scalars.
#include <algorithm>
#include <climits>

#include "common.h"

namespace cairn::python {
namespace {

std::string PathString(const KeyPath& path) { return path.empty() ? "the tree" : KeyPathToString(path); }

// A jax.Array, or a target's jax sharding, that spans processes: each process saves and restores only the boxes on
// its own devices. (A fully addressable one is read whole into numpy, which is simpler and as fast.)
bool SpansProcesses(py::handle sharding) {
  return !sharding.is_none() && py::hasattr(sharding, "is_fully_addressable") &&
         !sharding.attr("is_fully_addressable").cast<bool>();
}

// The box a tuple of slices (a jax shard's index) selects from an array of `global_shape`.
Box BoxFromIndex(py::handle index, const Shape& global_shape) {
  Box box{Shape(global_shape.size(), 0), global_shape};
  size_t d = 0;
  for (py::handle item : index) {
    if (d >= global_shape.size()) break;
    auto range = item.attr("indices")(global_shape[d]).cast<py::tuple>();
    box.origin[d] = range[0].cast<int64_t>();
    box.shape[d] = range[1].cast<int64_t>() - box.origin[d];
    ++d;
  }
  return box;
}

// Whether a jax.Array is saved shard by shard: when it spans processes (each saves its own), and when it lies on
// several devices of this one, so that each shard's buffer is read in place (an async save holds it, as it holds any
// jax.Array's) instead of first being gathered into a copy of the whole array; the chunks are then the shards, as
// Orbax writes them.
bool SaveByShards(py::handle obj) {
  if (!py::hasattr(obj, "addressable_shards")) return false;
  py::object sharding = Attr(obj, "sharding");
  if (SpansProcesses(sharding)) return true;
  return !sharding.is_none() && py::hasattr(sharding, "device_set") && py::len(sharding.attr("device_set")) > 1;
}

// This process's shards of a jax.Array, one per box (the lowest replica of it here).
Tree ShardedFromJax(py::handle obj, KeepAlive& keep, const KeyPath& path) {
  Shape global_shape = obj.attr("shape").cast<Shape>();
  DType dtype = DTypeFromPy(obj.attr("dtype"));
  std::vector<Shard> shards;
  for (py::handle shard : obj.attr("addressable_shards")) {
    Box box = BoxFromIndex(shard.attr("index"), global_shape);
    int replica_id = shard.attr("replica_id").cast<int>();
    auto same = std::find_if(shards.begin(), shards.end(), [&](const Shard& s) { return s.box == box; });
    if (same != shards.end()) {
      same->replica_id = std::min(same->replica_id, replica_id);
      continue;
    }
    // The shard's own jax.Array: saved from its buffer, never copied (ArrayFromPy).
    shards.push_back({box, replica_id, ArrayFromPy(shard.attr("data"), keep, PathString(path))});
  }
  return Tree(ShardedArray(dtype, std::move(global_shape), std::move(shards)));
}

// The boxes of a target spanning processes that this process's devices hold.
Tree ShardedSpecFromJax(py::handle obj, py::handle sharding) {
  ShardedArraySpec spec{DTypeFromPy(obj.attr("dtype")), obj.attr("shape").cast<Shape>(), {}};
  py::dict indices = sharding.attr("addressable_devices_indices_map")(py::tuple(py::cast(spec.global_shape)));
  for (auto [device, index] : indices) {
    Box box = BoxFromIndex(index, spec.global_shape);
    if (std::find(spec.boxes.begin(), spec.boxes.end(), box) == spec.boxes.end()) spec.boxes.push_back(box);
  }
  return Tree(std::move(spec));
}

Tree FromPy(py::handle obj, KeepAlive& keep, KeyPath& path) {
  if (obj.is_none()) return Tree::None();
  if (obj.ptr() == Py_Ellipsis) return Tree::Placeholder();
  if (PyBool_Check(obj.ptr())) return Tree::Scalar(obj.cast<bool>());
  if (PyLong_Check(obj.ptr())) {
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(obj.ptr(), &overflow);
    if (overflow) {
      throw InvalidArgumentError(PathString(path) + ": the integer " + py::str(obj).cast<std::string>() +
                                 " does not fit in int64");
    }
    return Tree::Scalar(static_cast<int64_t>(value));
  }
  if (PyFloat_Check(obj.ptr())) return Tree::Scalar(obj.cast<double>());
  if (PyUnicode_Check(obj.ptr())) return Tree::String(obj.cast<std::string>());
  if (py::isinstance<ArraySpec>(obj)) return Tree(obj.cast<ArraySpec>());
  if (PyDict_Check(obj.ptr())) {
    std::vector<Tree::Item> items;
    for (auto [key, value] : py::reinterpret_borrow<py::dict>(obj)) {
      if (!PyUnicode_Check(key.ptr())) {
        // A TypeError, as Python reports a value of the wrong type; raised before anything is written.
        throw py::type_error(PathString(path) + ": dict keys must be strings, got " + py::repr(key).cast<std::string>());
      }
      auto name = key.cast<std::string>();
      path.push_back({name, KeyType::kDict});
      items.emplace_back(name, FromPy(value, keep, path));
      path.pop_back();
    }
    return Tree::Dict(std::move(items));
  }
  if (PyTuple_Check(obj.ptr()) || PyList_Check(obj.ptr())) {
    std::vector<Tree> elements;
    size_t i = 0;
    for (py::handle element : obj) {
      path.push_back({std::to_string(i++), KeyType::kSequence});
      elements.push_back(FromPy(element, keep, path));
      path.pop_back();
    }
    return PyTuple_Check(obj.ptr()) ? Tree::Tuple(std::move(elements)) : Tree::List(std::move(elements));
  }
  if (SaveByShards(obj)) return ShardedFromJax(obj, keep, path);
  if (IsArrayLike(obj)) return Tree(ArrayFromPy(obj, keep, PathString(path)));
  // Anything with a shape and a dtype but no data (jax.ShapeDtypeStruct and the like) is a restore target.
  if (py::hasattr(obj, "shape") && py::hasattr(obj, "dtype")) {
    if (py::object sharding = Attr(obj, "sharding"); SpansProcesses(sharding)) return ShardedSpecFromJax(obj, sharding);
    return Tree(ArraySpec{DTypeFromPy(obj.attr("dtype")), obj.attr("shape").cast<Shape>()});
  }
  throw py::type_error(PathString(path) + ": cannot save a " +
                       py::str(py::type::of(obj).attr("__name__")).cast<std::string>() +
                       " (leaves are numpy arrays, array-likes, bool, int, float, str and None)");
}

}  // namespace

Tree TreeFromPy(py::handle obj, KeepAlive& keep) {
  KeyPath path;
  return FromPy(obj, keep, path);
}

py::object TreeToPy(const Tree& tree) {
  switch (tree.kind()) {
    case Tree::Kind::kNone:
      return py::none();
    case Tree::Kind::kDict: {
      py::dict out;
      for (const auto& [key, value] : tree.items()) out[py::str(key)] = TreeToPy(value);
      return out;
    }
    case Tree::Kind::kList: {
      py::list out;
      for (const Tree& element : tree.elements()) out.append(TreeToPy(element));
      return out;
    }
    case Tree::Kind::kTuple: {
      py::tuple out(tree.elements().size());
      for (size_t i = 0; i < tree.elements().size(); ++i) out[i] = TreeToPy(tree.elements()[i]);
      return out;
    }
    case Tree::Kind::kArray:
      return ArrayToNumpy(tree.array());
    case Tree::Kind::kArraySpec:
      return py::cast(tree.spec());
    case Tree::Kind::kScalar:
      return std::visit([](auto v) -> py::object { return py::cast(v); }, tree.scalar_value());
    case Tree::Kind::kString:
      return py::str(tree.string());
    case Tree::Kind::kPlaceholder:
      return py::reinterpret_borrow<py::object>(Py_Ellipsis);
    case Tree::Kind::kShardedArray: {
      // (origin, numpy array) per box this process restored; cairn._tree makes the jax.Array of the target.
      const ShardedArray& sharded = tree.sharded_array();
      py::list shards;
      for (const Shard& shard : sharded.shards()) {
        shards.append(py::make_tuple(py::tuple(py::cast(shard.box.origin)), ArrayToNumpy(shard.data)));
      }
      return py::module_::import("cairn._tree").attr("Shards")(py::tuple(py::cast(sharded.global_shape())), shards);
    }
    case Tree::Kind::kShardedArraySpec:
      break;
  }
  throw UnimplementedError("a sharded array spec has no Python form");
}

nlohmann::json JsonFromPy(py::handle obj) {
  if (obj.is_none()) return nullptr;
  if (PyBool_Check(obj.ptr())) return obj.cast<bool>();
  if (PyLong_Check(obj.ptr())) {
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(obj.ptr(), &overflow);
    if (!overflow) return static_cast<int64_t>(value);
    if (Py_SIZE(obj.ptr()) > 0) {
      unsigned long long u = PyLong_AsUnsignedLongLong(obj.ptr());
      if (!PyErr_Occurred()) return static_cast<uint64_t>(u);
      PyErr_Clear();
    }
    throw InvalidArgumentError("the integer " + py::str(obj).cast<std::string>() + " does not fit in JSON");
  }
  if (PyFloat_Check(obj.ptr())) return obj.cast<double>();
  if (PyUnicode_Check(obj.ptr())) return obj.cast<std::string>();
  if (PyDict_Check(obj.ptr())) {
    nlohmann::json out = nlohmann::json::object();
    for (auto [key, value] : py::reinterpret_borrow<py::dict>(obj)) {
      if (!PyUnicode_Check(key.ptr())) {
        throw InvalidArgumentError("JSON object keys must be strings, got " + py::repr(key).cast<std::string>());
      }
      out[key.cast<std::string>()] = JsonFromPy(value);
    }
    return out;
  }
  if (PyList_Check(obj.ptr()) || PyTuple_Check(obj.ptr())) {
    nlohmann::json out = nlohmann::json::array();
    for (py::handle element : obj) out.push_back(JsonFromPy(element));
    return out;
  }
  // numpy scalars, 0-d arrays, torch scalars: their Python value.
  if (py::hasattr(obj, "item") && py::hasattr(obj, "dtype")) {
    py::object shape = Attr(obj, "shape");
    if (shape.is_none() || py::len(shape) == 0) return JsonFromPy(obj.attr("item")());
    if (py::hasattr(obj, "tolist")) return JsonFromPy(obj.attr("tolist")());
  }
  throw InvalidArgumentError("cannot store a " + py::str(py::type::of(obj).attr("__name__")).cast<std::string>() +
                             " as JSON");
}

py::object JsonToPy(const nlohmann::json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      return py::none();
    case nlohmann::json::value_t::boolean:
      return py::bool_(json.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return py::int_(json.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return py::int_(json.get<uint64_t>());
    case nlohmann::json::value_t::number_float:
      return py::float_(json.get<double>());
    case nlohmann::json::value_t::string:
      return py::str(json.get<std::string>());
    case nlohmann::json::value_t::array: {
      py::list out;
      for (const auto& element : json) out.append(JsonToPy(element));
      return out;
    }
    case nlohmann::json::value_t::object: {
      py::dict out;
      for (const auto& [key, value] : json.items()) out[py::str(key)] = JsonToPy(value);
      return out;
    }
    case nlohmann::json::value_t::binary:
      break;
  }
  throw InvalidArgumentError("binary JSON values have no Python form");
}

void InitTree(py::module_& m) {
  py::class_<ArraySpec>(m, "ArraySpec",
                        "What an array is, without its bytes: a restore target (Orbax's jax.ShapeDtypeStruct) and "
                        "what metadata() reports.")
      .def(py::init([](py::iterable shape, py::handle dtype) {
             ArraySpec spec;
             for (py::handle d : shape) spec.shape.push_back(d.cast<int64_t>());
             spec.dtype = DTypeFromPy(dtype);
             NumElements(spec.shape);  // rejects negative dimensions
             return spec;
           }),
           py::arg("shape"), py::arg("dtype"))
      .def_property_readonly("shape",
                             [](const ArraySpec& s) {
                               py::tuple out(s.shape.size());
                               for (size_t i = 0; i < s.shape.size(); ++i) out[i] = py::int_(s.shape[i]);
                               return out;
                             })
      .def_property_readonly("dtype", [](const ArraySpec& s) { return ToNumpyDType(s.dtype); })
      .def_property_readonly("dtype_name", [](const ArraySpec& s) { return std::string(DTypeName(s.dtype)); })
      .def_property_readonly("ndim", [](const ArraySpec& s) { return s.shape.size(); })
      .def_property_readonly("size", [](const ArraySpec& s) { return NumElements(s.shape); })
      .def("__eq__",
           [](const ArraySpec& a, py::handle b) { return py::isinstance<ArraySpec>(b) && a == b.cast<ArraySpec>(); })
      .def("__hash__",
           [](const ArraySpec& s) {
             return py::hash(py::make_tuple(std::string(DTypeName(s.dtype)), py::tuple(py::cast(s.shape))));
           })
      .def(py::pickle(
          [](const ArraySpec& s) {
            return py::make_tuple(py::tuple(py::cast(s.shape)), std::string(DTypeName(s.dtype)));
          },
          [](py::tuple t) {
            if (t.size() != 2) throw InvalidArgumentError("ArraySpec: bad pickle state");
            return ArraySpec{DTypeFromName(t[1].cast<std::string>()), t[0].cast<Shape>()};
          }))
      .def("__repr__", [](const ArraySpec& s) {
        std::string shape = "(";
        for (size_t i = 0; i < s.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(s.shape[i]);
        if (s.shape.size() == 1) shape += ",";
        shape += ")";
        return "ArraySpec(shape=" + shape + ", dtype=" + std::string(DTypeName(s.dtype)) + ")";
      });

  m.def(
      "_roundtrip_tree",
      [](py::handle obj) {
        KeepAlive keep;
        Tree tree = TreeFromPy(obj, keep);
        return TreeToPy(tree);
      },
      "Converts a pytree to cairn's Tree and back (for tests).");
}

}  // namespace cairn::python
