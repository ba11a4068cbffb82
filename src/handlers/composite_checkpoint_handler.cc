// CompositeCheckpointHandler: several named items, each in its own subdirectory with its own handler.
#include "cairn/error.h"
#include "core/plain_name.h"
#include "cairn/handlers.h"
#include "io/temporary_path.h"
#include "metadata/checkpoint_metadata.h"

namespace cairn {

namespace args {
// The built-in args types' DefaultHandler, for code that sees only cairn/checkpoint_args.h.
template class ArgsBase<StandardSave>;
template class ArgsBase<StandardRestore>;
template class ArgsBase<PyTreeSave>;
template class ArgsBase<PyTreeRestore>;
template class ArgsBase<ArraySave>;
template class ArgsBase<ArrayRestore>;
template class ArgsBase<JsonSave>;
template class ArgsBase<JsonRestore>;

std::unique_ptr<CheckpointHandler> Composite::DefaultHandler() const {
  return std::make_unique<CompositeCheckpointHandler>();
}
}  // namespace args

CompositeCheckpointHandler::CompositeCheckpointHandler(std::vector<std::string> item_names)
    : item_names_(std::move(item_names)) {
  for (const auto& item : item_names_) CheckItemName(item);
}

CompositeCheckpointHandler::CompositeCheckpointHandler(std::map<std::string, std::unique_ptr<CheckpointHandler>> handlers)
    : handlers_(std::move(handlers)) {
  for (const auto& [item, handler] : handlers_) {
    CheckItemName(item);
    if (!handler) throw InvalidArgumentError("CompositeCheckpointHandler: item '" + item + "' has a null handler");
    item_names_.push_back(item);
  }
}

void CompositeCheckpointHandler::CheckItemName(const std::string& item) {
  if (!IsPlainName(item)) {
    throw InvalidArgumentError("bad checkpoint item name \"" + item + "\": " + kPlainNameRule);
  }
}

bool CompositeCheckpointHandler::reads_arrays_through_snapshot() const {
  // Items without a registered handler get the one their args call for: one of cairn's, which all do.
  for (const auto& [item, handler] : handlers_) {
    if (!handler->reads_arrays_through_snapshot()) return false;
  }
  return true;
}

std::string CompositeCheckpointHandler::typestr() const {
  return "orbax.checkpoint._src.handlers.composite_checkpoint_handler.CompositeCheckpointHandler";
}

nlohmann::json CompositeCheckpointHandler::item_handlers() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [item, handler] : handlers_) out[item] = handler->typestr();
  return out;
}

CheckpointHandler& CompositeCheckpointHandler::HandlerFor(const std::string& item, const CheckpointArgs* args) {
  if (auto it = handlers_.find(item); it != handlers_.end()) {
    if (args && inferred_items_.erase(item)) {
      // Inferred from a restored step (say an Orbax PyTreeCheckpointHandler item), now saved or restored with
      // args of another handler (StandardSave): the caller's args decide, as Orbax's registry keyed by args does.
      auto wanted = args->DefaultHandler();
      if (wanted && wanted->typestr() != it->second->typestr()) it->second = std::move(wanted);
    }
    return *it->second;
  }
  if (!args) {
    throw InvalidArgumentError("checkpoint item '" + item + "' has no handler: register one or pass its args");
  }
  CheckItemName(item);
  auto handler = args->DefaultHandler();
  if (!handler) {
    throw InvalidArgumentError("checkpoint item '" + item + "': the handler of " + args->name() +
                               " cannot be made without arguments; register one for the item");
  }
  auto& ref = *handler;
  handlers_[item] = std::move(handler);
  return ref;
}

void CompositeCheckpointHandler::save(const HandlerDirectory& directory, const CheckpointArgs& args) {
  const auto& composite = ArgsAs<args::Composite>(args, "CompositeCheckpointHandler");
  if (composite.items().empty()) throw InvalidArgumentError("Composite save needs at least one item");
  // Items in sorted order (std::map), so every process walks them the same way.
  for (const auto& [item, item_args] : composite.items()) {
    CheckpointHandler& handler = HandlerFor(item, item_args.get());
    // (A delta save: the item's directory carries the same item of the base step as its base.)
    const auto item_dir = directory / item;
    directory.fs().CreateDirs(item_dir, directory.file_options().path_permission_mode);
    handler.save(item_dir, *item_args);
  }
  saved_items_.clear();
  for (const auto& [item, item_args] : composite.items()) saved_items_.push_back(item);
}

void CompositeCheckpointHandler::finalize(const HandlerDirectory& directory) {
  for (const auto& item : saved_items_) handlers_.at(item)->finalize(directory / item);
}

namespace {

// The handler for an Orbax type string recorded in `_CHECKPOINT_METADATA` (v0 and v1 names); null when cairn
// has no equivalent.
std::unique_ptr<CheckpointHandler> HandlerForTypestr(const std::string& typestr) {
  auto ends_with = [&](std::string_view suffix) {
    return typestr.size() >= suffix.size() && typestr.compare(typestr.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (ends_with(".StandardCheckpointHandler")) return std::make_unique<StandardCheckpointHandler>();
  if (ends_with(".PyTreeCheckpointHandler") || ends_with(".PyTreeHandler")) {
    return std::make_unique<PyTreeCheckpointHandler>();
  }
  if (ends_with(".ArrayCheckpointHandler")) return std::make_unique<ArrayCheckpointHandler>();
  if (ends_with(".JsonCheckpointHandler") || ends_with(".JsonHandler")) return std::make_unique<JsonCheckpointHandler>();
  return nullptr;
}

// The error for item directories of `directory` that a restore without args has no handler for, saying why.
[[noreturn]] void ThrowUnrestorableItems(const HandlerDirectory& directory, const std::vector<std::string>& items) {
  std::string names;
  for (const auto& item : items) names += (names.empty() ? "'" : ", '") + item + "'";
  const auto step = metadata::ReadCheckpointMetadata(directory.fs(), directory);
  std::string why;
  if (!step) {
    why = "it has no " + std::string(metadata::kCheckpointMetadataFile) + " to name their handlers";
  } else if (!step->item_handlers.is_object()) {
    why = "its " + std::string(metadata::kCheckpointMetadataFile) + " records no item_handlers";
  } else {
    why = "its item_handlers name no handler cairn has for them";
  }
  throw InvalidArgumentError("cannot restore item" + std::string(items.size() == 1 ? " " : "s ") + names + " of " +
                             directory.string() + " without args: " + why +
                             ". Register their handlers, or restore with Composite args naming each item's args");
}

}  // namespace

void CompositeCheckpointHandler::AddHandlersFromStepMetadata(const HandlerDirectory& directory) {
  auto step = metadata::ReadCheckpointMetadata(directory.fs(), directory);
  if (!step || !step->item_handlers.is_object()) return;
  for (const auto& [item, typestr] : step->item_handlers.items()) {
    if (handlers_.count(item) || !typestr.is_string()) continue;
    if (!IsPlainName(item)) continue;
    if (auto handler = HandlerForTypestr(typestr.get<std::string>())) {
      handlers_[item] = std::move(handler);
      inferred_items_.insert(item);
    }
  }
}

Tree CompositeCheckpointHandler::restore(const HandlerDirectory& directory, const CheckpointArgs* args) {
  std::vector<Tree::Item> restored;
  if (args) {
    const auto& composite = ArgsAs<args::Composite>(*args, "CompositeCheckpointHandler");
    for (const auto& [item, item_args] : composite.items()) {
      const auto item_dir = directory / item;
      if (!directory.fs().IsDirectory(item_dir)) {
        throw NotFoundError("checkpoint item '" + item + "' does not exist in " + directory.string());
      }
      restored.emplace_back(item, HandlerFor(item, item_args.get()).restore(item_dir, item_args.get()));
    }
  } else {
    AddHandlersFromStepMetadata(directory);
    // Every item directory must be restored: returning the others alone would be a silently partial restore.
    // Orbax raises here too (an item whose handler is neither registered nor recorded).
    std::vector<std::string> unknown;
    for (const auto& name : directory.fs().ListDir(directory)) {
      if (!handlers_.count(name) && !io::IsTemporaryPath(name) && directory.fs().IsDirectory(directory / name)) {
        unknown.push_back(name);
      }
    }
    if (!unknown.empty()) ThrowUnrestorableItems(directory, unknown);
    for (const auto& [item, handler] : handlers_) {
      const auto item_dir = directory / item;
      if (directory.fs().IsDirectory(item_dir)) restored.emplace_back(item, handler->restore(item_dir, nullptr));
    }
  }
  return Tree::Dict(std::move(restored));
}

Tree CompositeCheckpointHandler::metadata(const HandlerDirectory& directory) {
  AddHandlersFromStepMetadata(directory);
  std::vector<Tree::Item> items;
  for (const auto& [item, handler] : handlers_) {
    const auto item_dir = directory / item;
    if (directory.fs().IsDirectory(item_dir)) items.emplace_back(item, handler->metadata(item_dir));
  }
  return Tree::Dict(std::move(items));
}

void CompositeCheckpointHandler::close() {
  for (auto& [item, handler] : handlers_) handler->close();
}

}  // namespace cairn
