// CheckpointManager, its options and its policies.
#include "common.h"

namespace cairn::python {
namespace {

std::function<double(const nlohmann::json&)> MetricFn(py::object fn) {
  PyCallable call(std::move(fn));
  return [call](const nlohmann::json& metrics) {
    py::gil_scoped_acquire gil;
    return call.Call<double>(JsonToPy(metrics));
  };
}

std::shared_ptr<const save_decision_policy::SaveDecisionPolicy> SavePolicyFromNative(py::handle native) {
  namespace sdp = save_decision_policy;
  auto kind = NativeItem(native, "kind").cast<std::string>();
  if (kind == "FixedIntervalPolicy")
    return std::make_shared<sdp::FixedIntervalPolicy>(NativeItem(native, "interval").cast<int64_t>());
  if (kind == "SpecificStepsPolicy") {
    return std::make_shared<sdp::SpecificStepsPolicy>(NativeItem(native, "steps").cast<std::set<int64_t>>());
  }
  if (kind == "ContinuousCheckpointingPolicy") {
    return std::make_shared<sdp::ContinuousCheckpointingPolicy>(OptionalAttr<int64_t>(native, "minimum_interval_secs"));
  }
  if (kind == "PreemptionCheckpointingPolicy") return std::make_shared<sdp::PreemptionCheckpointingPolicy>();
  if (kind == "InitialSavePolicy") return std::make_shared<sdp::InitialSavePolicy>();
  if (kind == "AnySavePolicy") {
    std::vector<std::shared_ptr<const sdp::SaveDecisionPolicy>> policies;
    for (py::handle p : NativeItem(native, "policies")) policies.push_back(SavePolicyFromNative(p));
    return std::make_shared<sdp::AnySavePolicy>(std::move(policies));
  }
  throw InvalidArgumentError("unknown save decision policy '" + kind + "'");
}

std::shared_ptr<const preservation_policy::PreservationPolicy> PreservationPolicyFromNative(py::handle native) {
  namespace pp = preservation_policy;
  auto kind = NativeItem(native, "kind").cast<std::string>();
  if (kind == "PreserveAll") return std::make_shared<pp::PreserveAll>();
  if (kind == "LatestN") return std::make_shared<pp::LatestN>(OptionalAttr<int64_t>(native, "n"));
  if (kind == "EveryNSeconds")
    return std::make_shared<pp::EveryNSeconds>(NativeItem(native, "interval_secs").cast<int64_t>());
  if (kind == "EveryNSteps") {
    return std::make_shared<pp::EveryNSteps>(NativeItem(native, "interval_steps").cast<int64_t>(),
                                             OptionalAttr<bool>(native, "exact_interval").value_or(true),
                                             OptionalAttr<int64_t>(native, "max_to_keep"));
  }
  if (kind == "CustomSteps")
    return std::make_shared<pp::CustomSteps>(NativeItem(native, "steps").cast<std::set<int64_t>>());
  if (kind == "LatestDuration") {
    return std::make_shared<pp::LatestDuration>(NativeItem(native, "duration_secs").cast<int64_t>());
  }
  if (kind == "BestN") {
    return std::make_shared<pp::BestN>(MetricFn(NativeItem(native, "get_metric_fn")),
                                       OptionalAttr<int64_t>(native, "n"),
                                       OptionalAttr<bool>(native, "reverse").value_or(false),
                                       OptionalAttr<bool>(native, "keep_checkpoints_without_metrics").value_or(true));
  }
  if (kind == "AnyPreservationPolicy") {
    std::vector<std::shared_ptr<const pp::PreservationPolicy>> policies;
    for (py::handle p : NativeItem(native, "policies")) policies.push_back(PreservationPolicyFromNative(p));
    return std::make_shared<pp::AnyPreservationPolicy>(std::move(policies));
  }
  throw InvalidArgumentError("unknown preservation policy '" + kind + "'");
}

// Seconds from a number or a datetime.timedelta.
int64_t Seconds(py::handle obj) {
  if (py::hasattr(obj, "total_seconds")) return static_cast<int64_t>(obj.attr("total_seconds")().cast<double>());
  return obj.cast<int64_t>();
}

CheckpointManagerOptions ManagerOptionsFromPy(py::handle obj) {
  CheckpointManagerOptions o;
  if (obj.is_none()) return o;
  if (auto v = OptionalAttr<int64_t>(obj, "save_interval_steps")) o.save_interval_steps = *v;
  o.max_to_keep = OptionalAttr<int64_t>(obj, "max_to_keep");
  if (py::object v = Attr(obj, "keep_time_interval"); !v.is_none())
    o.keep_time_interval = std::chrono::seconds(Seconds(v));
  o.keep_period = OptionalAttr<int64_t>(obj, "keep_period");
  if (py::object fn = Attr(obj, "best_fn"); !fn.is_none()) o.best_fn = MetricFn(fn);
  if (auto v = OptionalAttr<std::string>(obj, "best_mode")) o.best_mode = *v;
  if (auto v = OptionalAttr<bool>(obj, "keep_checkpoints_without_metrics")) o.keep_checkpoints_without_metrics = *v;
  o.step_prefix = OptionalAttr<std::string>(obj, "step_prefix");
  o.step_format_fixed_length = OptionalAttr<int>(obj, "step_format_fixed_length");
  if (auto v = OptionalAttr<bool>(obj, "create")) o.create = *v;
  if (auto v = OptionalAttr<bool>(obj, "cleanup_tmp_directories")) o.cleanup_tmp_directories = *v;
  if (py::object v = Attr(obj, "save_on_steps"); !v.is_none()) {
    for (py::handle s : v) o.save_on_steps.insert(s.cast<int64_t>());
  }
  o.todelete_subdir = OptionalAttr<std::string>(obj, "todelete_subdir");
  if (auto v = OptionalAttr<bool>(obj, "enable_background_delete")) o.enable_background_delete = *v;
  if (auto v = OptionalAttr<bool>(obj, "read_only")) o.read_only = *v;
  if (auto v = OptionalAttr<bool>(obj, "enable_async_checkpointing")) o.enable_async_checkpointing = *v;
  o.async_options = AsyncOptionsFromPy(Attr(obj, "async_options"));
  o.multiprocessing_options = MultiprocessingOptionsFromPy(Attr(obj, "multiprocessing_options"));
  if (py::object fn = Attr(obj, "should_save_fn"); !fn.is_none()) {
    PyCallable call(fn);
    o.should_save_fn = [call](int64_t step, std::optional<int64_t> last) {
      py::gil_scoped_acquire gil;
      return call.Call<bool>(step, last ? py::object(py::int_(*last)) : py::none());
    };
  }
  o.file_options = FileOptionsFromPy(Attr(obj, "file_options"));
  o.atomicity_options = AtomicityOptionsFromPy(Attr(obj, "atomicity_options"));
  if (auto v = OptionalAttr<bool>(obj, "save_root_metadata")) o.save_root_metadata = *v;
  if (py::object p = Attr(obj, "save_decision_policy"); !p.is_none()) {
    o.save_decision_policy = SavePolicyFromNative(p.attr("_native")());
  }
  if (py::object p = Attr(obj, "preservation_policy"); !p.is_none()) {
    o.preservation_policy = PreservationPolicyFromNative(p.attr("_native")());
  }
  if (auto v = OptionalAttr<bool>(obj, "prevent_write_metrics")) o.prevent_write_metrics = *v;
  if (auto v = OptionalAttr<bool>(obj, "lightweight_initialize")) o.lightweight_initialize = *v;
  if (auto v = OptionalAttr<bool>(obj, "save_deltas")) o.save_deltas = *v;
  if (auto v = OptionalAttr<double>(obj, "delta_max_changed_fraction")) o.delta_max_changed_fraction = *v;
  if (py::object fn = Attr(obj, "reached_preemption_fn"); !fn.is_none()) {
    PyCallable call(fn);
    o.reached_preemption_fn = [call](int64_t step) { return call.Call<bool>(step); };
  }
  return o;
}

py::object OptionalStep(std::optional<int64_t> step) { return step ? py::object(py::int_(*step)) : py::none(); }

class PyManager {
 public:
  // `handlers`: None, one handler (the unnamed item) or a dict of them by item name.
  PyManager(py::handle directory, py::handle options, py::handle item_names, py::handle handlers, py::handle metadata) {
    std::filesystem::path path = PathFromPy(directory);
    CheckpointManagerOptions o = ManagerOptionsFromPy(options);
    nlohmann::json root = metadata.is_none() ? nlohmann::json(nullptr) : JsonFromPy(metadata);
    if (!handlers.is_none() && PyDict_Check(handlers.ptr()) && !handlers.cast<py::dict>().contains("kind")) {
      CheckpointHandlerMap map;
      for (auto [name, handler] : handlers.cast<py::dict>()) {
        map[name.cast<std::string>()] = HandlerFromNative(handler);
      }
      py::gil_scoped_release release;
      impl_ = std::make_unique<CheckpointManager>(path, std::move(o), std::move(map), std::move(root));
    } else if (!handlers.is_none()) {
      std::unique_ptr<CheckpointHandler> handler = HandlerFromNative(handlers);
      py::gil_scoped_release release;
      impl_ = std::make_unique<CheckpointManager>(path, std::move(o), std::move(handler), std::move(root));
    } else {
      std::vector<std::string> names;
      if (!item_names.is_none()) names = item_names.cast<std::vector<std::string>>();
      py::gil_scoped_release release;
      impl_ = std::make_unique<CheckpointManager>(path, std::move(o), std::move(names), std::move(root));
    }
  }
  ~PyManager() {
    py::gil_scoped_release release;
    impl_.reset();
  }

  bool save(int64_t step, py::handle args, py::handle metrics, bool force, py::handle custom_metadata) {
    KeepAlive keep;
    std::unique_ptr<CheckpointArgs> cpp_args = ArgsFromNative(args, keep);
    CheckpointManagerSaveOptions options;
    if (!metrics.is_none()) options.metrics = JsonFromPy(metrics);
    options.force = force;
    if (!custom_metadata.is_none()) options.custom_metadata = JsonFromPy(custom_metadata);
    py::gil_scoped_release release;
    return manager().save(step, *cpp_args, options);
  }

  py::object restore(std::optional<int64_t> step, py::handle args) {
    KeepAlive keep;
    std::unique_ptr<CheckpointArgs> cpp_args;
    if (!args.is_none()) cpp_args = ArgsFromNative(args, keep);
    Tree tree;
    {
      py::gil_scoped_release release;
      tree = cpp_args ? manager().restore(step, *cpp_args) : manager().restore(step);
    }
    ReturnFilledTargets filled(keep);
    return TreeToPy(tree);
  }

  py::dict step_metadata(int64_t step) {
    StepMetadata m;
    {
      py::gil_scoped_release release;
      m = manager().metadata(step);
    }
    return StepMetadataToPy(m);
  }
  py::dict root_metadata() {
    RootMetadata m;
    {
      py::gil_scoped_release release;
      m = manager().metadata();
    }
    py::dict out;
    out["internal_metadata"] = JsonToPy(m.internal_metadata);
    out["custom_metadata"] = JsonToPy(m.custom_metadata);
    return out;
  }
  py::object item_metadata(int64_t step) {
    Tree t;
    {
      py::gil_scoped_release release;
      t = manager().item_metadata(step);
    }
    return TreeToPy(t);
  }
  // Even the calls that do no I/O release the GIL: they take the manager's locks, which a background thread may
  // hold while it waits for the GIL to call a Python policy or callback.
  py::object metrics(int64_t step) {
    std::optional<nlohmann::json> m;
    {
      py::gil_scoped_release release;
      m = manager().metrics(step);
    }
    return m ? JsonToPy(*m) : py::none();
  }

  std::vector<int64_t> all_steps() {
    py::gil_scoped_release release;
    return manager().all_steps();
  }
  py::object latest_step() {
    std::optional<int64_t> step;
    {
      py::gil_scoped_release release;
      step = manager().latest_step();
    }
    return OptionalStep(step);
  }
  py::object best_step() {
    std::optional<int64_t> step;
    {
      py::gil_scoped_release release;
      step = manager().best_step();
    }
    return OptionalStep(step);
  }
  bool should_save(int64_t step) {
    py::gil_scoped_release release;  // a Python should_save_fn takes the GIL itself
    return manager().should_save(step);
  }
  bool reached_preemption(int64_t step) {
    py::gil_scoped_release release;
    return manager().reached_preemption(step);
  }
  void reload() {
    py::gil_scoped_release release;
    manager().reload();
  }
  std::string step_directory(int64_t step) { return manager().step_directory(step).string(); }
  void delete_step(int64_t step) {
    py::gil_scoped_release release;
    manager().delete_step(step);
  }
  void wait_until_finished() {
    py::gil_scoped_release release;
    manager().wait_until_finished();
  }
  void check_for_errors() {
    py::gil_scoped_release release;
    manager().check_for_errors();
  }
  bool is_saving_in_progress() {
    py::gil_scoped_release release;
    return manager().is_saving_in_progress();
  }
  void close() {
    py::gil_scoped_release release;
    manager().close();
  }
  std::string directory() { return manager().directory().string(); }

 private:
  CheckpointManager& manager() { return *impl_; }
  std::unique_ptr<CheckpointManager> impl_;
};

}  // namespace

void InitManager(py::module_& m) {
  py::class_<PyManager>(m, "_CheckpointManager")
      .def(py::init<py::handle, py::handle, py::handle, py::handle, py::handle>(), py::arg("directory"),
           py::arg("options"), py::arg("item_names"), py::arg("handlers"), py::arg("metadata"))
      .def("save", &PyManager::save, py::arg("step"), py::arg("args"), py::arg("metrics"), py::arg("force"),
           py::arg("custom_metadata"))
      .def("restore", &PyManager::restore, py::arg("step"), py::arg("args"))
      .def("step_metadata", &PyManager::step_metadata)
      .def("root_metadata", &PyManager::root_metadata)
      .def("item_metadata", &PyManager::item_metadata)
      .def("metrics", &PyManager::metrics)
      .def("all_steps", &PyManager::all_steps)
      .def("latest_step", &PyManager::latest_step)
      .def("best_step", &PyManager::best_step)
      .def("should_save", &PyManager::should_save)
      .def("reached_preemption", &PyManager::reached_preemption)
      .def("reload", &PyManager::reload)
      .def("delete", &PyManager::delete_step)
      .def("step_directory", &PyManager::step_directory, py::arg("step"))
      .def("wait_until_finished", &PyManager::wait_until_finished)
      .def("check_for_errors", &PyManager::check_for_errors)
      .def("is_saving_in_progress", &PyManager::is_saving_in_progress)
      .def("close", &PyManager::close)
      .def_property_readonly("directory", &PyManager::directory);
}

}  // namespace cairn::python
