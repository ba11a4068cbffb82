// The Python package's args, handlers and options to their C++ counterparts.
//
// The Python classes (python/cairn/args.py, handlers.py, options.py) keep Orbax's signatures; args and handlers
// describe themselves to this file as plain dicts (their `_native()` methods) with a "kind" key, options are read
// by attribute.
#include "common.h"

namespace cairn::python {
namespace {

std::string Kind(py::handle native) {
  if (!PyDict_Check(native.ptr()) || !native.cast<py::dict>().contains("kind")) {
    throw InvalidArgumentError("expected checkpoint args or a handler, got " + py::repr(native).cast<std::string>());
  }
  return native.cast<py::dict>()["kind"].cast<std::string>();
}

SaveArgs SaveArgsFromNative(py::handle obj) {
  SaveArgs out;
  if (obj.is_none()) return out;
  if (auto dtype = NativeItem(obj, "dtype"); !dtype.is_none()) out.dtype = DTypeFromPy(dtype);
  out.chunk_byte_size = OptionalAttr<int64_t>(obj, "chunk_byte_size");
  if (auto sharding = NativeItem(obj, "sharding"); !sharding.is_none()) out.sharding = sharding.cast<std::string>();
  if (auto frozen = OptionalAttr<bool>(obj, "frozen")) out.frozen = *frozen;
  return out;
}

SaveArgsMap SaveArgsMapFromNative(py::handle obj) {
  SaveArgsMap out;
  if (obj.is_none()) return out;
  for (auto [name, args] : obj.cast<py::dict>()) out[name.cast<std::string>()] = SaveArgsFromNative(args);
  return out;
}

RestoreArgsMap RestoreArgsMapFromNative(py::handle obj) {
  RestoreArgsMap out;
  if (obj.is_none()) return out;
  for (auto [name, args] : obj.cast<py::dict>()) {
    RestoreArgs r;
    if (auto dtype = NativeItem(args, "dtype"); !dtype.is_none()) r.dtype = DTypeFromPy(dtype);
    if (auto fill = OptionalAttr<bool>(args, "fill_target")) r.fill_target = *fill;
    if (auto lazy = OptionalAttr<bool>(args, "lazy")) r.lazy = *lazy;
    if (auto check = OptionalAttr<std::string>(args, "lazy_check")) {
      if (*check == "on_access") {
        r.lazy_check = RestoreArgs::LazyCheck::kOnAccess;
      } else if (*check == "up_front") {
        r.lazy_check = RestoreArgs::LazyCheck::kUpFront;
      } else {
        throw InvalidArgumentError("RestoreArgs: lazy_check must be \"on_access\" or \"up_front\", not \"" + *check +
                                   "\"");
      }
    }
    out[name.cast<std::string>()] = r;
  }
  return out;
}

nlohmann::json JsonOrNull(py::handle obj) { return obj.is_none() ? nlohmann::json(nullptr) : JsonFromPy(obj); }

PyTreeCheckpointHandlerOptions PyTreeOptionsFromNative(py::handle native) {
  PyTreeCheckpointHandlerOptions o;
  if (auto v = OptionalAttr<bool>(native, "use_ocdbt")) o.use_ocdbt = *v;
  if (auto v = OptionalAttr<bool>(native, "use_zarr3")) o.use_zarr3 = *v;
  if (auto v = OptionalAttr<bool>(native, "use_compression")) o.use_compression = *v;
  if (auto v = OptionalAttr<std::string>(native, "compressor")) o.compressor = *v;
  if (auto v = OptionalAttr<int64_t>(native, "save_concurrent_gb")) o.save_concurrent_gb = *v;
  if (auto v = OptionalAttr<int64_t>(native, "restore_concurrent_gb")) o.restore_concurrent_gb = *v;
  if (auto v = OptionalAttr<bool>(native, "verify_checksums")) o.verify_checksums = *v;
  return o;
}

}  // namespace

std::unique_ptr<CheckpointArgs> ArgsFromNative(py::handle native, KeepAlive& keep) {
  std::string kind = Kind(native);
  if (kind == "StandardSave") {
    return std::make_unique<args::StandardSave>(TreeFromPy(NativeItem(native, "item"), keep),
                                                SaveArgsMapFromNative(NativeItem(native, "save_args")),
                                                JsonOrNull(NativeItem(native, "custom_metadata")));
  }
  if (kind == "StandardRestore") {
    return std::make_unique<args::StandardRestore>(TreeFromPy(NativeItem(native, "item"), keep),
                                                   OptionalAttr<bool>(native, "strict").value_or(true));
  }
  if (kind == "PyTreeSave") {
    return std::make_unique<args::PyTreeSave>(TreeFromPy(NativeItem(native, "item"), keep),
                                              SaveArgsMapFromNative(NativeItem(native, "save_args")),
                                              OptionalAttr<int64_t>(native, "ocdbt_target_data_file_size"),
                                              JsonOrNull(NativeItem(native, "custom_metadata")));
  }
  if (kind == "PyTreeRestore") {
    return std::make_unique<args::PyTreeRestore>(TreeFromPy(NativeItem(native, "item"), keep),
                                                 RestoreArgsMapFromNative(NativeItem(native, "restore_args")),
                                                 OptionalAttr<bool>(native, "partial_restore").value_or(false),
                                                 OptionalAttr<bool>(native, "strict").value_or(true));
  }
  if (kind == "ArraySave") {
    Tree item = TreeFromPy(NativeItem(native, "item"), keep);
    if (!item.is_array()) throw InvalidArgumentError("ArraySave: the item must be an array");
    return std::make_unique<args::ArraySave>(item.array(), SaveArgsFromNative(NativeItem(native, "save_args")));
  }
  if (kind == "ArrayRestore") {
    std::optional<ArraySpec> spec;
    if (auto item = NativeItem(native, "item"); !item.is_none()) {
      Tree target = TreeFromPy(item, keep);
      if (!target.is_spec() && !target.is_array()) {
        throw InvalidArgumentError("ArrayRestore: the item must be an ArraySpec or an array");
      }
      spec = target.array_spec();
    }
    return std::make_unique<args::ArrayRestore>(spec, OptionalAttr<bool>(native, "strict").value_or(true));
  }
  if (kind == "JsonSave") return std::make_unique<args::JsonSave>(JsonFromPy(NativeItem(native, "item")));
  if (kind == "JsonRestore") return std::make_unique<args::JsonRestore>();
  if (kind == "Composite") {
    auto out = std::make_unique<args::Composite>();
    for (auto [name, item] : NativeItem(native, "items").cast<py::dict>()) {
      out->set(name.cast<std::string>(), std::shared_ptr<const CheckpointArgs>(ArgsFromNative(item, keep)));
    }
    return out;
  }
  throw InvalidArgumentError("unknown checkpoint args kind '" + kind + "'");
}

std::unique_ptr<CheckpointHandler> HandlerFromNative(py::handle native) {
  std::string kind = Kind(native);
  if (kind == "standard") return std::make_unique<StandardCheckpointHandler>(PyTreeOptionsFromNative(native));
  if (kind == "pytree") return std::make_unique<PyTreeCheckpointHandler>(PyTreeOptionsFromNative(native));
  if (kind == "array") {
    return std::make_unique<ArrayCheckpointHandler>(
        OptionalAttr<std::string>(native, "checkpoint_name").value_or("checkpoint"));
  }
  if (kind == "json") {
    return std::make_unique<JsonCheckpointHandler>(OptionalAttr<std::string>(native, "filename").value_or("metadata"));
  }
  if (kind == "composite") {
    py::object handlers = NativeItem(native, "handlers");
    std::vector<std::string> names;
    if (auto item_names = NativeItem(native, "item_names"); !item_names.is_none()) {
      names = item_names.cast<std::vector<std::string>>();
    }
    if (!handlers.is_none() && py::len(handlers) > 0) {
      std::map<std::string, std::unique_ptr<CheckpointHandler>> map;
      for (auto [name, handler] : handlers.cast<py::dict>()) map[name.cast<std::string>()] = HandlerFromNative(handler);
      return std::make_unique<CompositeCheckpointHandler>(std::move(map));
    }
    return std::make_unique<CompositeCheckpointHandler>(std::move(names));
  }
  throw InvalidArgumentError("unknown handler kind '" + kind + "'");
}

MultiprocessingOptions MultiprocessingOptionsFromPy(py::handle obj) {
  MultiprocessingOptions o;
  if (obj.is_none()) return o;
  if (auto v = OptionalAttr<int>(obj, "primary_host")) o.primary_host = *v;
  o.active_processes = OptionalAttr<std::vector<int>>(obj, "active_processes");
  o.barrier_sync_key_prefix = OptionalAttr<std::string>(obj, "barrier_sync_key_prefix");
  if (auto v = OptionalAttr<int64_t>(obj, "barrier_timeout_secs")) o.barrier_timeout_secs = *v;
  o.process_group = OptionalAttr<std::shared_ptr<ProcessGroup>>(obj, "process_group").value_or(nullptr);
  return o;
}

FileOptions FileOptionsFromPy(py::handle obj) {
  FileOptions o;
  if (obj.is_none()) return o;
  o.path_permission_mode = OptionalAttr<uint32_t>(obj, "path_permission_mode");
  return o;
}

AtomicityOptions AtomicityOptionsFromPy(py::handle obj) {
  AtomicityOptions o;
  if (obj.is_none()) return o;
  py::object mode = Attr(obj, "mode");
  if (!mode.is_none()) {
    // An enum member or its name/value: "auto", "atomic_rename", "commit_file" (any case).
    py::object text = py::hasattr(mode, "value") ? mode.attr("value") : mode;
    std::string m = py::str(text).cast<std::string>();
    for (auto& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (m == "auto") {
      o.mode = AtomicityMode::kAuto;
    } else if (m == "atomic_rename") {
      o.mode = AtomicityMode::kAtomicRename;
    } else if (m == "commit_file") {
      o.mode = AtomicityMode::kCommitFile;
    } else {
      throw InvalidArgumentError("unknown atomicity mode '" + m + "'");
    }
  }
  if (auto v = OptionalAttr<bool>(obj, "allow_legacy_atomic_rename")) o.allow_legacy_atomic_rename = *v;
  return o;
}

AsyncOptions AsyncOptionsFromPy(py::handle obj) {
  AsyncOptions o;
  if (obj.is_none()) return o;
  if (auto v = OptionalAttr<int64_t>(obj, "timeout_secs")) o.timeout_secs = *v;
  if (auto v = OptionalAttr<bool>(obj, "create_directories_asynchronously")) o.create_directories_asynchronously = *v;
  if (py::object fn = Attr(obj, "barrier_sync_fn"); !fn.is_none()) {
    PyCallable call(fn);
    o.barrier_sync_fn = [call](const std::string& key, int64_t timeout_ms) { call.Call(key, timeout_ms); };
  }
  if (py::object fn = Attr(obj, "post_finalization_callback"); !fn.is_none()) {
    PyCallable call(fn);
    o.post_finalization_callback = [call]() { call.Call(); };
  }
  return o;
}

py::dict StepMetadataToPy(const StepMetadata& m) {
  py::dict out;
  out["item_handlers"] = JsonToPy(m.item_handlers);
  out["metrics"] = JsonToPy(m.metrics);
  out["performance_metrics"] = JsonToPy(m.performance_metrics);
  out["init_timestamp_nsecs"] = m.init_timestamp_nsecs ? py::object(py::int_(*m.init_timestamp_nsecs)) : py::none();
  out["commit_timestamp_nsecs"] =
      m.commit_timestamp_nsecs ? py::object(py::int_(*m.commit_timestamp_nsecs)) : py::none();
  out["custom_metadata"] = JsonToPy(m.custom_metadata);
  out["item_metadata"] = TreeToPy(m.item_metadata);
  return out;
}

}  // namespace cairn::python
