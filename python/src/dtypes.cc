// cairn's dtypes as numpy dtypes.
//
// numpy has no bfloat16, float8, int4, ... types. Where ml_dtypes is installed (every JAX environment has it),
// those arrays come back with ml_dtypes' dtypes, as JAX and Orbax return them. Without it (Debian 12 has no
// ml_dtypes), they come back with a one-field structured dtype named after the type, `np.dtype([('bfloat16',
// '<u2')])`: the bytes are kept exactly, the name says what they are, and saving such an array stores it as
// bfloat16 again. `cairn.bfloat16`, `cairn.float8_e4m3fn`, ... are whichever of these dtypes is in use; both kinds
// are accepted as input. `cairn.cast()` converts to and from them, and a restore target `ArraySpec(shape,
// np.float32)` casts while reading.
#include <array>

#include "common.h"

namespace cairn::python {
namespace {

constexpr DType kExtendedTypes[] = {DType::kBFloat16,         DType::kFloat8E4M3FN,       DType::kFloat8E5M2,
                                    DType::kInt4,             DType::kInt2,               DType::kFloat8E4M3FNUZ,
                                    DType::kFloat8E4M3B11FNUZ, DType::kFloat8E5M2FNUZ,     DType::kFloat8E3M4,
                                    DType::kFloat8E8M0FNU,    DType::kFloat4E2M1FN};

bool IsExtended(DType dtype) {
  for (DType e : kExtendedTypes) {
    if (e == dtype) return true;
  }
  return false;
}

// The ml_dtypes module, or None where it is not installed.
py::object MlDtypes() {
  try {
    return py::module_::import("ml_dtypes");
  } catch (py::error_already_set&) {
    return py::none();
  }
}

// Built once; never freed (destroying Python objects at exit, after the interpreter, would crash).
py::dtype& Cached(DType dtype) {
  static auto* cache = new std::array<py::dtype*, 32>{};
  py::dtype*& slot = (*cache)[static_cast<size_t>(dtype)];
  if (!slot) {
    std::string name(DTypeName(dtype));
    py::object ml_dtypes = MlDtypes();
    if (IsExtended(dtype) && !ml_dtypes.is_none()) {
      slot = new py::dtype(py::dtype::from_args(ml_dtypes.attr(name.c_str())));
    } else if (IsExtended(dtype)) {
      const char* storage = ItemSize(dtype) == 2 ? "<u2" : "u1";
      py::list fields;
      fields.append(py::make_tuple(name, storage));
      slot = new py::dtype(py::dtype::from_args(fields));
    } else {
      slot = new py::dtype(py::dtype::from_args(py::str(name)));
    }
  }
  return *slot;
}

std::optional<DType> ExtendedFromName(const std::string& name) {
  for (DType e : kExtendedTypes) {
    if (DTypeName(e) == name) return e;
  }
  return std::nullopt;
}

DType FromNumpyDType(const py::dtype& dt) {
  py::object names = dt.attr("names");
  if (!names.is_none()) {
    auto fields = names.cast<py::tuple>();
    if (fields.size() == 1) {
      auto name = fields[0].cast<std::string>();
      // The attribute, not py::dtype::itemsize(), which pybind11 2.10 misreads under numpy 2 (see ArrayToNumpy).
      if (auto e = ExtendedFromName(name); e && dt.attr("itemsize").cast<size_t>() == ItemSize(*e)) return *e;
    }
    throw InvalidArgumentError("numpy dtype " + py::repr(dt).cast<std::string>() +
                               " has no cairn equivalent (structured dtypes are only cairn.bfloat16, "
                               "cairn.float8_e4m3fn, ...: one field named after the type)");
  }
  // ml_dtypes' types (kind 'V', named after the type).
  if (auto e = ExtendedFromName(dt.attr("name").cast<std::string>());
      e && dt.attr("itemsize").cast<size_t>() == ItemSize(*e)) {
    return *e;
  }
  if (dt.attr("byteorder").cast<std::string>() == ">") {
    throw InvalidArgumentError("numpy dtype " + py::repr(dt).cast<std::string>() +
                               " is big-endian; cairn stores little-endian data (use .astype('<...'))");
  }
  auto name = dt.attr("name").cast<std::string>();
  if (name == "bool" || name == "int8" || name == "int16" || name == "int32" || name == "int64" || name == "uint8" ||
      name == "uint16" || name == "uint32" || name == "uint64" || name == "float16" || name == "float32" ||
      name == "float64" || name == "complex64" || name == "complex128") {
    return DTypeFromName(name);
  }
  throw InvalidArgumentError("numpy dtype " + py::repr(dt).cast<std::string>() + " has no cairn equivalent");
}

}  // namespace

py::dtype ToNumpyDType(DType dtype) { return Cached(dtype); }

DType DTypeFromPy(py::handle obj) {
  if (py::isinstance<py::dtype>(obj)) return FromNumpyDType(py::reinterpret_borrow<py::dtype>(obj));
  if (py::isinstance<py::str>(obj)) {
    auto name = obj.cast<std::string>();
    if (auto e = ExtendedFromName(name)) return *e;
  }
  // torch.float32, torch.bfloat16, ...: by name.
  std::string text = py::str(obj).cast<std::string>();
  if (text.rfind("torch.", 0) == 0) {
    std::string name = text.substr(6);
    if (name == "bool") return DType::kBool;
    if (auto e = ExtendedFromName(name)) return *e;
    return FromNumpyDType(py::dtype::from_args(py::str(name)));
  }
  // A dtype-like object with a `.dtype` (an array, a spec) is not a dtype; np.dtype() takes everything else.
  py::object dt;
  try {
    dt = py::module_::import("numpy").attr("dtype")(obj);
  } catch (py::error_already_set&) {
    throw InvalidArgumentError("not a dtype: " + py::repr(obj).cast<std::string>());
  }
  return FromNumpyDType(py::reinterpret_borrow<py::dtype>(dt));
}

void InitDTypes(py::module_& m) {
  for (DType e : kExtendedTypes) m.attr(std::string(DTypeName(e)).c_str()) = ToNumpyDType(e);
  m.def(
      "dtype_name", [](py::handle dtype) { return std::string(DTypeName(DTypeFromPy(dtype))); },
      "cairn's (and JAX's) name of a dtype: 'float32', 'bfloat16', ...");
  m.def(
      "as_numpy_dtype", [](py::handle dtype) { return ToNumpyDType(DTypeFromPy(dtype)); },
      "The numpy dtype cairn uses for a dtype (a structured one for bfloat16 and float8).");
}

}  // namespace cairn::python
