// What the files of the extension module share: conversions between Python objects and cairn's values.
//
// Every function here is called with the GIL held. Calls into the library that do I/O release it
// (py::gil_scoped_release) once their arguments are converted.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cairn/cairn.h>

namespace cairn::python {

namespace py = pybind11;

// Python objects whose memory a converted Tree borrows (numpy arrays, DLPack capsules). They must outlive every
// use of the Tree; destroy them with the GIL held, after the Tree.
using KeepAlive = std::vector<py::object>;

// errors.cc
void InitErrors(py::module_& m);

// dtypes.cc
void InitDTypes(py::module_& m);
// The numpy dtype of a cairn dtype: numpy's own, or for bfloat16 and the float8 types a one-field structured
// dtype named after the type (`[('bfloat16', '<u2')]`) that keeps the bytes.
py::dtype ToNumpyDType(DType dtype);
// The cairn dtype of a numpy dtype (or anything np.dtype() accepts, a name such as "bfloat16", a torch dtype).
// InvalidArgumentError for a dtype cairn has no equivalent of.
DType DTypeFromPy(py::handle obj);

// arrays.cc
// A numpy array that owns (through a capsule) the bytes of `array`, without copying them when cairn owns them.
py::array ArrayToNumpy(const Array& array);
// An Array borrowing the bytes of `obj` (a numpy array, anything with __dlpack__ or __array__); the objects that
// hold the bytes go into `keep`. `where` names the leaf for error messages.
Array ArrayFromPy(py::handle obj, KeepAlive& keep, const std::string& where);
// While one lives (a restore's result converted back to Python), ArrayToNumpy gives back the caller's own numpy
// array for an Array that borrows its bytes writably (RestoreArgs(fill_target=True) filled it in place): the
// same object, not a copy. `keep` holds the numpy arrays the restore's args were converted from.
class ReturnFilledTargets {
 public:
  explicit ReturnFilledTargets(const KeepAlive& keep);
  ~ReturnFilledTargets();
  ReturnFilledTargets(const ReturnFilledTargets&) = delete;
  ReturnFilledTargets& operator=(const ReturnFilledTargets&) = delete;

 private:
  const KeepAlive* previous_;
};
// Whether `obj` is an array-like leaf (numpy array or scalar, DLPack, __array__).
bool IsArrayLike(py::handle obj);
void InitArrays(py::module_& m);

// tree_convert.cc
Tree TreeFromPy(py::handle obj, KeepAlive& keep);
py::object TreeToPy(const Tree& tree);
nlohmann::json JsonFromPy(py::handle obj);
py::object JsonToPy(const nlohmann::json& json);
void InitTree(py::module_& m);

// args_convert.cc: the plain dicts that the Python classes' `_native()` methods return.
std::unique_ptr<CheckpointArgs> ArgsFromNative(py::handle native, KeepAlive& keep);
std::unique_ptr<CheckpointHandler> HandlerFromNative(py::handle native);
MultiprocessingOptions MultiprocessingOptionsFromPy(py::handle obj);
FileOptions FileOptionsFromPy(py::handle obj);
AtomicityOptions AtomicityOptionsFromPy(py::handle obj);
AsyncOptions AsyncOptionsFromPy(py::handle obj);
py::dict StepMetadataToPy(const StepMetadata& metadata);

// checkpointers.cc, manager.cc
void InitCheckpointers(py::module_& m);
void InitManager(py::module_& m);
void InitProcessGroups(py::module_& m);

// A Python callable that C++ may call from any thread and destroy without the GIL: calls take the GIL, and the
// last copy drops its reference under the GIL.
class PyCallable {
 public:
  explicit PyCallable(py::object fn);
  // Calls it with the GIL held and converts the result to R (nothing for void), still under the GIL.
  template <typename R = void, typename... Args>
  R Call(Args&&... args) const {
    py::gil_scoped_acquire gil;
    py::object result = (*fn_)(std::forward<Args>(args)...);
    if constexpr (!std::is_void_v<R>) return result.template cast<R>();
  }

 private:
  std::shared_ptr<py::object> fn_;
};

// native[key] of a `_native()` dict, or None when it has no such key.
py::object NativeItem(py::handle native, const char* key);
// getattr(obj, name), or None when obj is None or has no such attribute.
py::object Attr(py::handle obj, const char* name);
// An attribute (or dict item, for dicts) that may be None.
template <typename T>
std::optional<T> OptionalAttr(py::handle obj, const char* name) {
  py::object value =
      py::isinstance<py::dict>(obj) ? py::reinterpret_borrow<py::dict>(obj).attr("get")(name) : Attr(obj, name);
  if (value.is_none()) return std::nullopt;
  return value.cast<T>();
}

std::filesystem::path PathFromPy(py::handle obj);

}  // namespace cairn::python
