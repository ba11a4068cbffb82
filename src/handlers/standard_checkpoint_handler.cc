// StandardCheckpointHandler: the PyTree handler restricted to arrays and scalars, as Orbax's is.
#include "cairn/error.h"
#include "cairn/handlers.h"

namespace cairn {

StandardCheckpointHandler::StandardCheckpointHandler(PyTreeCheckpointHandlerOptions options) : impl_(options) {}

std::string StandardCheckpointHandler::typestr() const {
  return "orbax.checkpoint._src.handlers.standard_checkpoint_handler.StandardCheckpointHandler";
}

void StandardCheckpointHandler::save(const HandlerDirectory& directory, const CheckpointArgs& args) {
  const auto& a = ArgsAs<args::StandardSave>(args, "StandardCheckpointHandler");
  if (a.item.is_leaf()) {
    throw InvalidArgumentError(
        "StandardCheckpointHandler saves a tree (dict, list or tuple) of arrays and scalars, not a bare leaf; "
        "wrap it in a dict, or use ArrayCheckpointHandler for a single array");
  }
  for (const auto& [path, leaf] : a.item.Flatten()) {
    if (!leaf.is_array() && !leaf.is_sharded_array() && !leaf.is_scalar()) {
      throw InvalidArgumentError("StandardCheckpointHandler saves only arrays and scalars, but " +
                                 KeyPathToString(path) + " is a " +
                                 (leaf.is_string() ? std::string("string (use PyTreeCheckpointHandler)")
                                                   : leaf.is_spec() ? std::string("ArraySpec, which has no data")
                                                                    : std::string("placeholder")));
    }
  }
  impl_.save(directory, args::PyTreeSave(a.item, a.save_args, std::nullopt, a.custom_metadata));
}

Tree StandardCheckpointHandler::restore(const HandlerDirectory& directory, const CheckpointArgs* args) {
  if (!args) return impl_.restore(directory, nullptr);
  const auto& a = ArgsAs<args::StandardRestore>(*args, "StandardCheckpointHandler");
  const args::PyTreeRestore request(a.item, {}, /*partial_restore=*/false, a.strict);
  return impl_.restore(directory, &request);
}

Tree StandardCheckpointHandler::metadata(const HandlerDirectory& directory) { return impl_.metadata(directory); }

void StandardCheckpointHandler::finalize(const HandlerDirectory& directory) { impl_.finalize(directory); }

}  // namespace cairn
