// The extension module `cairn._cairn`. The Python package `cairn` (python/cairn/) wraps it with Orbax's API.
#include "common.h"

namespace cairn::python {

PyCallable::PyCallable(py::object fn)
    : fn_(new py::object(std::move(fn)), [](py::object* p) {
        py::gil_scoped_acquire gil;
        delete p;
      }) {}

py::object Attr(py::handle obj, const char* name) {
  if (obj.is_none() || !py::hasattr(obj, name)) return py::none();
  return obj.attr(name);
}

py::object NativeItem(py::handle native, const char* key) { return native.cast<py::dict>().attr("get")(key); }

std::filesystem::path PathFromPy(py::handle obj) {
  // str, bytes, pathlib.Path and anything else os.fspath() takes (epath.Path included); str and bytes both cast.
  return std::filesystem::path(py::module_::import("os").attr("fspath")(obj).cast<std::string>());
}

}  // namespace cairn::python

PYBIND11_MODULE(_cairn, m) {
  using namespace cairn::python;
  m.doc() = "cairn: Orbax's checkpointing in C++ (the extension module; import `cairn`, not this)";
  InitErrors(m);
  InitDTypes(m);
  InitArrays(m);
  InitTree(m);
  InitProcessGroups(m);
  InitCheckpointers(m);
  InitManager(m);
}
