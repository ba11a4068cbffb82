// Checkpointer and AsyncCheckpointer (StandardCheckpointer is an AsyncCheckpointer around a
// StandardCheckpointHandler, assembled in python/cairn/checkpointers.py).
//
// Every call converts its Python arguments with the GIL held, then releases the GIL for the library call, so other
// Python threads run during the I/O. An async save blocks only for the library's own blocking part (copying the
// arrays into staging buffers) plus the conversion.
#include "common.h"

namespace cairn::python {
namespace {

class PyCheckpointer {
 public:
  PyCheckpointer(py::handle handler, bool async, py::handle async_options, py::handle multiprocessing_options,
                 py::handle file_options, py::handle atomicity_options) {
    CheckpointerOptions options;
    options.multiprocessing_options = MultiprocessingOptionsFromPy(multiprocessing_options);
    options.file_options = FileOptionsFromPy(file_options);
    options.atomicity_options = AtomicityOptionsFromPy(atomicity_options);
    std::unique_ptr<CheckpointHandler> h = HandlerFromNative(handler);
    if (async) {
      AsyncOptions a = AsyncOptionsFromPy(async_options);
      py::gil_scoped_release release;
      auto ckptr = std::make_unique<AsyncCheckpointer>(std::move(h), std::move(a), std::move(options));
      async_ = ckptr.get();
      impl_ = std::move(ckptr);
    } else {
      py::gil_scoped_release release;
      impl_ = std::make_unique<Checkpointer>(std::move(h), std::move(options));
    }
  }
  // The destructor waits for a save in flight, which may call back into Python: release the GIL meanwhile.
  ~PyCheckpointer() {
    py::gil_scoped_release release;
    impl_.reset();
  }

  void save(py::handle directory, py::handle args, bool force, py::handle custom_metadata, py::handle delta_base,
            double delta_max_changed_fraction, bool record_delta_hashes) {
    std::filesystem::path path = PathFromPy(directory);
    KeepAlive keep;  // declared before `cpp_args`, so destroyed after it
    std::unique_ptr<CheckpointArgs> cpp_args = ArgsFromNative(args, keep);
    SaveOptions options;
    options.force = force;
    if (!custom_metadata.is_none()) options.custom_metadata = JsonFromPy(custom_metadata);
    if (!delta_base.is_none()) options.delta_base = PathFromPy(delta_base);
    options.delta_max_changed_fraction = delta_max_changed_fraction;
    options.record_delta_hashes = record_delta_hashes;
    py::gil_scoped_release release;
    checkpointer().save(path, *cpp_args, options);
  }

  py::object restore(py::handle directory, py::handle args) {
    std::filesystem::path path = PathFromPy(directory);
    KeepAlive keep;
    std::unique_ptr<CheckpointArgs> cpp_args;
    if (!args.is_none()) cpp_args = ArgsFromNative(args, keep);
    Tree tree;
    {
      py::gil_scoped_release release;
      tree = cpp_args ? checkpointer().restore(path, *cpp_args) : checkpointer().restore(path);
    }
    ReturnFilledTargets filled(keep);
    return TreeToPy(tree);
  }

  py::dict metadata(py::handle directory) {
    std::filesystem::path path = PathFromPy(directory);
    StepMetadata m;
    {
      py::gil_scoped_release release;
      m = checkpointer().metadata(path);
    }
    return StepMetadataToPy(m);
  }

  void wait_until_finished() {
    if (!async_) return;
    py::gil_scoped_release release;
    async_->wait_until_finished();
  }
  void check_for_errors() {
    if (!async_) return;
    py::gil_scoped_release release;
    async_->check_for_errors();
  }
  bool is_saving_in_progress() const {
    if (!async_) return false;
    py::gil_scoped_release release;  // it takes a lock a background thread may hold while it waits for the GIL
    return async_->is_saving_in_progress();
  }
  void close() {
    if (!impl_) return;
    py::gil_scoped_release release;
    impl_->close();
  }

 private:
  Checkpointer& checkpointer() {
    if (!impl_) throw InvalidArgumentError("the checkpointer is closed");
    return *impl_;
  }

  std::unique_ptr<Checkpointer> impl_;
  AsyncCheckpointer* async_ = nullptr;
};

}  // namespace

void InitCheckpointers(py::module_& m) {
  py::class_<PyCheckpointer>(m, "_Checkpointer")
      .def(py::init<py::handle, bool, py::handle, py::handle, py::handle, py::handle>(), py::arg("handler"),
           py::arg("is_async"), py::arg("async_options"), py::arg("multiprocessing_options"), py::arg("file_options"),
           py::arg("atomicity_options"))
      .def("save", &PyCheckpointer::save, py::arg("directory"), py::arg("args"), py::arg("force"),
           py::arg("custom_metadata"), py::arg("delta_base") = py::none(), py::arg("delta_max_changed_fraction") = 1.0,
           py::arg("record_delta_hashes") = false)
      .def("restore", &PyCheckpointer::restore, py::arg("directory"), py::arg("args"))
      .def("metadata", &PyCheckpointer::metadata, py::arg("directory"))
      .def("wait_until_finished", &PyCheckpointer::wait_until_finished)
      .def("check_for_errors", &PyCheckpointer::check_for_errors)
      .def("is_saving_in_progress", &PyCheckpointer::is_saving_in_progress)
      .def("close", &PyCheckpointer::close);

  // What `cairn info --json` prints (DescribeCheckpoint), as JSON text: the Python package reads each array's
  // `_sharding` entry from it to restore jax.Arrays onto their saved shardings.
  m.def(
      "_describe",
      [](py::handle path) {
        const std::filesystem::path p = PathFromPy(path);
        std::string text;
        {
          py::gil_scoped_release release;
          text = DescribeCheckpoint(p).dump();
        }
        return text;
      },
      py::arg("path"));
}

}  // namespace cairn::python
