// cairn::Error and its kinds as Python exceptions. Each class derives from `cairn.Error` and from the builtin an
// Orbax user already catches, so `except FileNotFoundError` and `except cairn.Error` both work:
//
//   NotFoundError         FileNotFoundError
//   AlreadyExistsError    FileExistsError, ValueError (Orbax raises ValueError for an existing destination)
//   InvalidArgumentError  ValueError
//   CorruptionError       ValueError
//   TimeoutError          TimeoutError
//   IoError               OSError, with .errno set
//   UnimplementedError    NotImplementedError
//   AbortedError          RuntimeError
#include <cerrno>

#include "common.h"

namespace cairn::python {
namespace {

// Owned by the module (set as its attributes); never freed, as pybind11's own exception types.
PyObject* error_base = nullptr;
PyObject* not_found = nullptr;
PyObject* already_exists = nullptr;
PyObject* invalid_argument = nullptr;
PyObject* corruption = nullptr;
PyObject* timeout = nullptr;
PyObject* io = nullptr;
PyObject* unimplemented = nullptr;
PyObject* aborted = nullptr;

PyObject* NewException(py::module_& m, const char* name, std::initializer_list<PyObject*> bases, const char* doc) {
  py::tuple base_tuple(bases.size());
  size_t i = 0;
  for (PyObject* base : bases) base_tuple[i++] = py::reinterpret_borrow<py::object>(base);
  std::string qualified = std::string("cairn.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, base_tuple.ptr(), nullptr);
  if (!type) throw py::error_already_set();
  m.add_object(name, py::reinterpret_borrow<py::object>(type));
  return type;
}

void SetError(PyObject* type, const char* message) { PyErr_SetString(type, message); }

}  // namespace

void InitErrors(py::module_& m) {
  error_base = NewException(m, "Error", {PyExc_Exception}, "Base of every error cairn raises.");
  not_found = NewException(m, "NotFoundError", {error_base, PyExc_FileNotFoundError},
                           "A checkpoint, file, key or parameter does not exist.");
  already_exists = NewException(m, "AlreadyExistsError", {error_base, PyExc_FileExistsError, PyExc_ValueError},
                                "The destination exists and force was not given.");
  invalid_argument = NewException(m, "InvalidArgumentError", {error_base, PyExc_ValueError},
                                  "The call asked for something impossible or inconsistent.");
  corruption = NewException(m, "CorruptionError", {error_base, PyExc_ValueError},
                            "Bytes on disk do not decode or fail their checksum.");
  timeout = NewException(m, "TimeoutError", {error_base, PyExc_TimeoutError},
                         "A save, barrier or wait ran past its deadline.");
  io = NewException(m, "IoError", {error_base, PyExc_OSError}, "The operating system refused a call; errno says why.");
  unimplemented = NewException(m, "UnimplementedError", {error_base, PyExc_NotImplementedError},
                               "A valid format feature cairn does not support.");
  aborted =
      NewException(m, "AbortedError", {error_base, PyExc_RuntimeError}, "Given up because another process failed.");

  py::register_exception_translator([](std::exception_ptr p) {
    if (!p) return;
    try {
      std::rethrow_exception(p);
    } catch (const NotFoundError& e) {
      SetError(not_found, e.what());
    } catch (const AlreadyExistsError& e) {
      SetError(already_exists, e.what());
    } catch (const InvalidArgumentError& e) {
      SetError(invalid_argument, e.what());
    } catch (const CorruptionError& e) {
      SetError(corruption, e.what());
    } catch (const TimeoutError& e) {
      SetError(timeout, e.what());
    } catch (const IoError& e) {
      // OSError(errno, strerror): sets .errno and .strerror; str() is "[Errno N] message".
      py::object value = py::reinterpret_borrow<py::object>(io)(e.error_number(), e.what());
      PyErr_SetObject(io, value.ptr());
    } catch (const UnimplementedError& e) {
      SetError(unimplemented, e.what());
    } catch (const AbortedError& e) {
      SetError(aborted, e.what());
    } catch (const Error& e) {
      SetError(error_base, e.what());
    }
  });
}

}  // namespace cairn::python
