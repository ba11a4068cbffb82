#include "cairn/handler_directory.h"

namespace cairn {

HandlerDirectory::HandlerDirectory(std::filesystem::path path, std::shared_ptr<FileSystem> fs,
                                   MultiprocessingOptions multiprocessing, FileOptions file_options,
                                   std::optional<DeltaBase> delta_base)
    : HandlerDirectory(std::move(path),
                       std::make_shared<const Context>(Context{fs ? std::move(fs) : FileSystem::Default(),
                                                               std::move(multiprocessing), file_options}),
                       std::move(delta_base)) {}

HandlerDirectory::HandlerDirectory(std::filesystem::path path, std::shared_ptr<const Context> context,
                                   std::optional<DeltaBase> delta_base)
    : path_(std::move(path)), context_(std::move(context)), delta_base_(std::move(delta_base)) {}

int HandlerDirectory::process_index() const {
  const auto& group = context_->multiprocessing.process_group;
  return group ? group->index() : 0;
}

int HandlerDirectory::process_count() const {
  const auto& group = context_->multiprocessing.process_group;
  return group ? group->count() : 1;
}

HandlerDirectory HandlerDirectory::operator/(const std::filesystem::path& name) const {
  std::optional<DeltaBase> delta = delta_base_;
  if (delta && !delta->item_dir.empty()) delta->item_dir /= name;
  return HandlerDirectory(path_ / name, context_, std::move(delta));
}

}  // namespace cairn
