// ArrayCheckpointHandler: one array, stored as Orbax stores it: `{checkpoint_name: array}` without OCDBT.
#include "cairn/error.h"
#include "cairn/handlers.h"

namespace cairn {
namespace {
PyTreeCheckpointHandlerOptions ArrayOptions() {
  PyTreeCheckpointHandlerOptions options;
  options.use_ocdbt = false;
  return options;
}
}  // namespace

ArrayCheckpointHandler::ArrayCheckpointHandler(std::string checkpoint_name)
    : checkpoint_name_(std::move(checkpoint_name)), impl_(ArrayOptions()) {}

std::string ArrayCheckpointHandler::typestr() const {
  return "orbax.checkpoint._src.handlers.array_checkpoint_handler.ArrayCheckpointHandler";
}

void ArrayCheckpointHandler::save(const HandlerDirectory& directory, const CheckpointArgs& args) {
  const auto& a = ArgsAs<args::ArraySave>(args, "ArrayCheckpointHandler");
  SaveArgsMap save_args{{checkpoint_name_, a.save_args}};
  impl_.save(directory, args::PyTreeSave(Tree::Dict({{checkpoint_name_, a.item}}), std::move(save_args)));
}

Tree ArrayCheckpointHandler::restore(const HandlerDirectory& directory, const CheckpointArgs* args) {
  args::PyTreeRestore request;
  if (args) {
    const auto& a = ArgsAs<args::ArrayRestore>(*args, "ArrayCheckpointHandler");
    if (a.item) request.item = Tree::Dict({{checkpoint_name_, *a.item}});
    request.strict = a.strict;
  }
  Tree restored = impl_.restore(directory, &request);
  if (!restored.is_dict() || !restored.contains(checkpoint_name_)) {
    throw CorruptionError(directory.string() + " does not hold an array named '" + checkpoint_name_ + "'");
  }
  return restored[checkpoint_name_];
}

Tree ArrayCheckpointHandler::metadata(const HandlerDirectory& directory) {
  Tree tree = impl_.metadata(directory);
  return tree.is_dict() && tree.contains(checkpoint_name_) ? tree[checkpoint_name_] : tree;
}

}  // namespace cairn
