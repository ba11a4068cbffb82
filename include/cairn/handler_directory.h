// HandlerDirectory: the directory a CheckpointHandler call works in, together with the FileSystem it lives on and
// the options of the checkpointer that made the call (as Orbax's handlers get an epath.Path, which knows its own
// file system).
//
// The checkpointer builds one for every call, so a handler needs no configuring before it is used. A handler that
// wraps others passes it on (or a subdirectory of it: `directory / "item"`); there is no way to reach an inner
// handler without one, so an inner handler always works on the checkpointer's file system.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cairn/file_system.h"
#include "cairn/multiprocessing_options.h"

namespace cairn {

class HandlerDirectory {
 public:
  // A delta save (SaveOptions::delta_base): the directory that held this item in the base step. Handlers that store
  // arrays share their unchanged chunks with it; the others write everything, as in a full save.
  struct DeltaBase {
    std::filesystem::path item_dir;  // empty: nothing to share, only record the hashes for later deltas
    double max_changed_fraction = 1.0;
  };

  // `path` on `fs` (null: FileSystem::Default()), for a handler of one of `multiprocessing`'s processes.
  // Checkpointers build these; tests and tools that drive a handler directly build one themselves.
  explicit HandlerDirectory(std::filesystem::path path, std::shared_ptr<FileSystem> fs = nullptr,
                            MultiprocessingOptions multiprocessing = {}, FileOptions file_options = {},
                            std::optional<DeltaBase> delta_base = std::nullopt);

  const std::filesystem::path& path() const { return path_; }
  operator const std::filesystem::path&() const { return path_; }  // NOLINT: a HandlerDirectory is a path
  std::string string() const { return path_.string(); }

  // A subdirectory on the same file system, for the same processes. The delta base, if any, descends into the
  // subdirectory of the same name (an item of a composite shares with the same item of the base step).
  HandlerDirectory operator/(const std::filesystem::path& name) const;

  FileSystem& fs() const { return *context_->fs; }
  const std::shared_ptr<FileSystem>& fs_ptr() const { return context_->fs; }
  const MultiprocessingOptions& multiprocessing_options() const { return context_->multiprocessing; }
  // Which process of the save this is, of how many, and whether it is the one that writes what all share and
  // commits (MultiprocessingOptions::primary_host). One process of one without a process group.
  int process_index() const;
  int process_count() const;
  bool is_primary() const { return process_index() == multiprocessing_options().primary_host; }
  const FileOptions& file_options() const { return context_->file_options; }
  // Set during a save with SaveOptions::delta_base or record_delta_hashes; nullopt otherwise.
  const std::optional<DeltaBase>& delta_base() const { return delta_base_; }

 private:
  struct Context {
    std::shared_ptr<FileSystem> fs;
    MultiprocessingOptions multiprocessing;
    FileOptions file_options;
  };
  HandlerDirectory(std::filesystem::path path, std::shared_ptr<const Context> context,
                   std::optional<DeltaBase> delta_base);

  std::filesystem::path path_;
  std::shared_ptr<const Context> context_;  // shared by a directory and its subdirectories
  std::optional<DeltaBase> delta_base_;
};

}  // namespace cairn
