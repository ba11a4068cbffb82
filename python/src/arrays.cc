// numpy arrays (and anything with __dlpack__ or __array__) to cairn Arrays and back.
//
// Saving borrows: the Array points into the caller's buffer, and the Python objects holding it stay referenced
// until the library call returns. A synchronous save reads the bytes during the call; an asynchronous one copies
// borrowed arrays into staging buffers before save() returns (cairn's contract for Ownership::kBorrowed), so a
// caller may change its arrays as soon as save() returns. Restoring hands the restored buffer to numpy through a
// capsule, without another copy; an array of a lazy restore (RestoreArgs(lazy=True)) is handed over the same way,
// over the mapping of its file, read-only (writeable=False), the capsule keeping the mapping alive. A numpy array
// over such a buffer (a restored array, as restored) is saved as the cairn Array it is: owned, so an asynchronous
// save snapshots it copy-on-write instead of copying it (shared, for a lazy one: never copied), and the buffer
// stays alive until the save is done even if Python frees the numpy array meanwhile. A writable numpy array that
// is a restore target with RestoreArgs(fill_target=True) is filled in place and returned as itself.
//
// A jax.Array is immutable, so it is saved as shared bytes (Array::FromShared), never copied: an asynchronous save
// of a CPU jax.Array holds its buffer (through DLPack, which JAX honours: it keeps the memory of a deleted array
// with an outstanding export alive, and does not donate such a buffer) until the write is done, and a jax.Array on
// an accelerator is copied to the host once (numpy.asarray) and that copy is saved as it is. The Python objects
// are released by the save's background thread through the module's releaser thread (HoldPythonObjects), since
// that thread must never wait for the GIL.
#include <pthread.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "common.h"

namespace cairn::python {
namespace {

// The capsule that owns a restored buffer handed to numpy: a cairn Array, under a name of its own so that a numpy
// array over it is recognised when saved again.
constexpr const char* kHeldArrayCapsule = "cairn.Array";

void DeleteHeldArray(PyObject* capsule) {
  delete static_cast<Array*>(PyCapsule_GetPointer(capsule, kHeldArrayCapsule));
}

// The cairn Array a numpy array's base capsule holds, or null.
const Array* HeldArray(py::handle base) {
  if (!base || !PyCapsule_IsValid(base.ptr(), kHeldArrayCapsule)) return nullptr;
  return static_cast<const Array*>(PyCapsule_GetPointer(base.ptr(), kHeldArrayCapsule));
}

// Whether this thread holds the GIL. From Python 3.13 the current thread state is per thread (null where the
// thread does not hold the GIL); before, it is the runtime's, that of whichever thread holds the GIL, so it must be
// this thread's own. (PyGILState_Check would answer yes on every thread once a subinterpreter exists.)
bool HoldsGil() {
#if PY_VERSION_HEX >= 0x030D0000
  return PyThreadState_GetUnchecked() != nullptr;
#else
  PyThreadState* current = _PyThreadState_UncheckedGet();
  return current != nullptr && current == PyGILState_GetThisThreadState();
#endif
}

// Python objects whose last holder went on a library thread (a save's background write), which must never wait for
// the GIL: the thread holding it may be waiting for that library thread (wait_until_finished, close). They are
// queued, and a releaser thread of the module's own takes the GIL to release them: they go as soon as Python
// lets go of the GIL, whatever the main thread is doing. (Py_AddPendingCall would release them only on the main
// thread, between bytecodes: a main thread blocked in C code, or gone idle, would hold every buffer of every save.)
// At exit (atexit, before the interpreter finalizes) the releaser stops; objects released after that are left to
// the process's end. A child of fork() has no releaser thread (and maybe a lock held at the fork): it starts afresh
// with an empty one (what the parent had queued stays referenced there, never released).
struct Releaser {
  std::mutex mu;
  std::condition_variable wake;
  std::vector<PyObject*> queue;
  bool stopped = false;
  std::thread thread;  // started by the first object queued
};
Releaser* releaser = new Releaser;  // never destroyed: library threads may queue objects while the process exits

void ReleaseQueued() {
  std::unique_lock lock(releaser->mu);
  for (;;) {
    releaser->wake.wait(lock, [] { return releaser->stopped || !releaser->queue.empty(); });
    if (releaser->stopped) return;
    std::vector<PyObject*> batch;
    batch.swap(releaser->queue);
    lock.unlock();
    const PyGILState_STATE gil = PyGILState_Ensure();
    for (PyObject* o : batch) Py_DECREF(o);
    PyGILState_Release(gil);
    lock.lock();
  }
}

void ReleaseOnReleaserThread(const std::vector<PyObject*>& objects) {
  std::lock_guard lock(releaser->mu);
  if (releaser->stopped) return;  // the interpreter is exiting
  releaser->queue.insert(releaser->queue.end(), objects.begin(), objects.end());
  if (!releaser->thread.joinable()) releaser->thread = std::thread(ReleaseQueued);
  releaser->wake.notify_one();
}

// At exit, with the GIL: the releaser stops (it may be waiting for the GIL, so it is joined without it), and what
// it had not taken yet is released here.
void StopReleaser() {
  std::thread thread;
  {
    std::lock_guard lock(releaser->mu);
    releaser->stopped = true;
    thread.swap(releaser->thread);
  }
  releaser->wake.notify_one();
  if (thread.joinable()) {
    py::gil_scoped_release no_gil;
    thread.join();
  }
  std::vector<PyObject*> rest;
  {
    std::lock_guard lock(releaser->mu);
    rest.swap(releaser->queue);
  }
  for (PyObject* o : rest) Py_DECREF(o);
}

// Bytes held by Python objects (a DLPack capsule, a numpy array, the jax.Array): a holder for Array::FromShared
// that releases them where it is released when that thread holds the GIL, else on the releaser thread (above).
std::shared_ptr<const void> HoldPythonObjects(std::vector<py::object> objects, const void* data) {
  auto held = std::make_shared<std::vector<PyObject*>>();
  for (py::object& o : objects) held->push_back(o.release().ptr());
  auto holder = std::shared_ptr<std::vector<PyObject*>>(held.get(), [held](std::vector<PyObject*>* objs) {
    if (HoldsGil()) {
      for (PyObject* o : *objs) Py_DECREF(o);
      return;
    }
    try {
      ReleaseOnReleaserThread(*objs);
    } catch (...) {  // no thread or memory for it: the objects stay referenced (a leak), which beats terminate()
    }
  });
  return std::shared_ptr<const void>(holder, data);
}

// Whether `obj` is a jax.Array (immutable: its bytes can be saved without a copy).
bool IsJaxArray(py::handle obj) {
  const py::object module = py::type::of(obj).attr("__module__");
  if (!py::isinstance<py::str>(module)) return false;
  const std::string name = module.cast<std::string>();
  return (name.rfind("jax", 0) == 0 || name.rfind("jaxlib", 0) == 0) && py::hasattr(obj, "addressable_shards");
}

// The DLPack ABI (dlpack.h, version 0.x), the parts we read.
struct DLDevice {
  int32_t device_type;
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};
enum : int32_t { kDLCPU = 1, kDLCUDAHost = 3 };
enum : uint8_t { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLComplex = 5, kDLBool = 6 };

DType DTypeFromDLPack(const DLDataType& t, py::handle obj, const std::string& where) {
  if (t.lanes == 1) {
    switch (t.code) {
      case kDLInt:
        if (t.bits == 8) return DType::kInt8;
        if (t.bits == 16) return DType::kInt16;
        if (t.bits == 32) return DType::kInt32;
        if (t.bits == 64) return DType::kInt64;
        break;
      case kDLUInt:
        if (t.bits == 8) {
          // Older producers (torch 1.x) export bool as uint8.
          py::object dt = Attr(obj, "dtype");
          if (!dt.is_none() && py::str(dt).cast<std::string>() == "torch.bool") return DType::kBool;
          return DType::kUInt8;
        }
        if (t.bits == 16) return DType::kUInt16;
        if (t.bits == 32) return DType::kUInt32;
        if (t.bits == 64) return DType::kUInt64;
        break;
      case kDLFloat:
        if (t.bits == 16) return DType::kFloat16;
        if (t.bits == 32) return DType::kFloat32;
        if (t.bits == 64) return DType::kFloat64;
        break;
      case kDLBfloat:
        if (t.bits == 16) return DType::kBFloat16;
        break;
      case kDLComplex:
        if (t.bits == 64) return DType::kComplex64;
        if (t.bits == 128) return DType::kComplex128;
        break;
      case kDLBool:
        if (t.bits == 8) return DType::kBool;
        break;
    }
  }
  throw InvalidArgumentError(where + ": DLPack dtype (code " + std::to_string(t.code) + ", bits " +
                             std::to_string(t.bits) + ", lanes " + std::to_string(t.lanes) +
                             ") has no cairn equivalent");
}

Array FromDLPack(py::handle original, KeepAlive& keep, const std::string& where) {
  py::object obj = py::reinterpret_borrow<py::object>(original);
  // torch: a tensor that requires grad refuses export; a non-contiguous one is made contiguous (a copy).
  if (py::hasattr(obj, "requires_grad") && obj.attr("requires_grad").cast<bool>() && py::hasattr(obj, "detach")) {
    obj = obj.attr("detach")();
  }
  if (py::hasattr(obj, "is_contiguous") && !obj.attr("is_contiguous")().cast<bool>()) {
    obj = obj.attr("contiguous")();
  }
  py::object capsule = obj.attr("__dlpack__")();
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), "dltensor"));
  if (!managed) throw py::error_already_set();
  // We consume it: the capsule no longer deletes it, our own capsule (kept alive with the save) does.
  if (PyCapsule_SetName(capsule.ptr(), "used_dltensor") != 0) throw py::error_already_set();
  py::capsule owner(managed, [](void* p) {
    auto* m = static_cast<DLManagedTensor*>(p);
    if (m->deleter) m->deleter(m);
  });
  keep.push_back(owner);
  keep.push_back(obj);
  const DLTensor& t = managed->dl_tensor;
  if (t.device.device_type != kDLCPU && t.device.device_type != kDLCUDAHost) {
    throw InvalidArgumentError(where + ": the array is on a device (DLPack device type " +
                               std::to_string(t.device.device_type) + "); copy it to host memory first");
  }
  DType dtype = DTypeFromDLPack(t.dtype, obj, where);
  Shape shape(t.shape, t.shape + t.ndim);
  if (t.strides) {
    int64_t expected = 1;
    for (int i = t.ndim - 1; i >= 0; --i) {
      if (shape[i] != 1 && t.strides[i] != expected) {
        throw InvalidArgumentError(where + ": the DLPack array is not C-contiguous; make it contiguous first");
      }
      expected *= shape[i];
    }
  }
  const auto* data = static_cast<const std::byte*>(t.data) + t.byte_offset;
  if (IsJaxArray(original)) return Array::FromShared(HoldPythonObjects({owner, obj}, data), dtype, std::move(shape));
  return Array::FromBorrowed(data, dtype, std::move(shape));
}

// An array on an accelerator that can copy itself to the host through __array__ (a jax.Array on a GPU): numpy's
// asarray does that copy, where DLPack would hand over device memory.
bool OnDeviceWithArray(py::handle obj) {
  if (!py::hasattr(obj, "__dlpack_device__") || !py::hasattr(obj, "__array__")) return false;
  try {
    auto device = obj.attr("__dlpack_device__")().cast<py::tuple>();
    int device_type = device[0].cast<int>();
    return device_type != kDLCPU && device_type != kDLCUDAHost;
  } catch (py::error_already_set&) {
    return false;
  }
}

// The numpy arrays a restore's targets came from, while a ReturnFilledTargets lives on this thread.
thread_local const KeepAlive* filled_targets = nullptr;

bool IsNumpyGeneric(py::handle obj) {
  static auto* generic = new py::object(py::module_::import("numpy").attr("generic"));
  return py::isinstance(obj, *generic);
}

}  // namespace

bool IsArrayLike(py::handle obj) {
  return py::isinstance<py::array>(obj) || IsNumpyGeneric(obj) || py::hasattr(obj, "__dlpack__") ||
         py::hasattr(obj, "__array__");
}

Array ArrayFromPy(py::handle obj, KeepAlive& keep, const std::string& where) {
  py::object np = py::module_::import("numpy");
  py::object arr;
  if (py::isinstance<py::array>(obj)) {
    arr = py::reinterpret_borrow<py::object>(obj);
  } else if (!IsNumpyGeneric(obj) && py::hasattr(obj, "__dlpack__") && !OnDeviceWithArray(obj)) {
    try {
      return FromDLPack(obj, keep, where);
    } catch (py::error_already_set& e) {
      // The producer refused this array (torch 1.x exports no bool, no conjugated views): use __array__ if it has
      // one, else say why.
      if (!py::hasattr(obj, "__array__")) throw;
    }
    arr = np.attr("asarray")(obj);
  } else {
    arr = np.attr("asarray")(obj);
  }
  py::dtype dt = arr.attr("dtype").cast<py::dtype>();
  if (dt.attr("byteorder").cast<std::string>() == ">") arr = arr.attr("astype")(dt.attr("newbyteorder")("="));
  if (!arr.attr("flags").attr("c_contiguous").cast<bool>()) arr = np.attr("ascontiguousarray")(arr);
  DType dtype;
  try {
    dtype = DTypeFromPy(arr.attr("dtype"));
  } catch (const InvalidArgumentError& e) {
    throw InvalidArgumentError(where + ": " + e.what());
  }
  auto a = py::reinterpret_borrow<py::array>(arr);
  Shape shape(a.shape(), a.shape() + a.ndim());
  keep.push_back(arr);
  if (const Array* held = HeldArray(arr.attr("base")); held && held->bytes().data() == a.data() &&
                                                        held->dtype() == dtype && held->shape() == shape) {
    return *held;
  }
  // A jax.Array copied to the host (from an accelerator, or through __array__): nobody else writes that copy.
  if (IsJaxArray(obj)) return Array::FromShared(HoldPythonObjects({arr}, a.data()), dtype, std::move(shape));
  // The caller's own writable array (not a converted copy of it) may be a restore target to fill in place
  // (RestoreArgs(fill_target=True)); otherwise the bytes are only read.
  if (arr.is(obj) && a.writeable()) return Array::FromBorrowedWritable(a.mutable_data(), dtype, std::move(shape));
  return Array::FromBorrowed(a.data(), dtype, std::move(shape));
}

ReturnFilledTargets::ReturnFilledTargets(const KeepAlive& keep) : previous_(filled_targets) { filled_targets = &keep; }
ReturnFilledTargets::~ReturnFilledTargets() { filled_targets = previous_; }

py::array ArrayToNumpy(const Array& array) {
  if (filled_targets && array.ownership() == Ownership::kBorrowed && array.writable() && array.num_bytes()) {
    for (const py::object& obj : *filled_targets) {
      if (!py::isinstance<py::array>(obj)) continue;
      auto a = py::reinterpret_borrow<py::array>(obj);
      if (a.data() == array.bytes().data() && static_cast<size_t>(a.nbytes()) == array.num_bytes()) return a;
    }
  }
  // Owned bytes are handed over; shared ones (a lazy restore's mapping of a file) too, read-only; borrowed ones
  // (the caller's memory, valid only during the call) are copied.
  const bool shared = array.ownership() == Ownership::kShared;
  auto* held = new Array(array.ownership() == Ownership::kBorrowed ? array.Copy() : array);
  auto owner = py::reinterpret_steal<py::object>(PyCapsule_New(held, kHeldArrayCapsule, DeleteHeldArray));
  if (!owner) {
    delete held;
    throw py::error_already_set();
  }
  std::vector<py::ssize_t> shape(held->shape().begin(), held->shape().end());
  // C-order strides from cairn's own item size. Left to pybind11, they would come from py::dtype::itemsize(), which
  // pybind11 before 2.12 (Debian 12 has 2.10) reads at numpy 1's offset in the descriptor: under numpy 2 (PyPI's,
  // as JAX environments have) that is another field, and every element would alias the first.
  std::vector<py::ssize_t> strides(shape.size());
  py::ssize_t stride = static_cast<py::ssize_t>(ItemSize(held->dtype()));
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  void* data = held->num_bytes() ? const_cast<std::byte*>(held->bytes().data()) : nullptr;
  if (!data) return py::array(ToNumpyDType(held->dtype()), shape, strides);  // empty: numpy allocates nothing
  py::array out(ToNumpyDType(held->dtype()), shape, strides, data, owner);
  if (shared) out.attr("flags").attr("writeable") = false;  // a mapping of the checkpoint's file: never written
  return out;
}

void InitArrays(py::module_& m) {
  py::module_::import("atexit").attr("register")(py::cpp_function(&StopReleaser));
  pthread_atfork(nullptr, nullptr, [] { releaser = new Releaser; });
  m.def(
      "cast",
      [](py::handle array, py::handle dtype) {
        KeepAlive keep;
        Array a = ArrayFromPy(array, keep, "cast");
        DType to = DTypeFromPy(dtype);
        Array out;
        {
          py::gil_scoped_release release;
          out = a.Cast(to);
        }
        return ArrayToNumpy(out);
      },
      py::arg("array"), py::arg("dtype"),
      "A new numpy array with the elements converted to `dtype` (numpy's astype semantics), bfloat16 and float8 "
      "included: cast(x, cairn.bfloat16), cast(bf16_array, np.float32).");
}

}  // namespace cairn::python
