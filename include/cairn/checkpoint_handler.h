// CheckpointHandler: the type-specific half of a save or restore. A Checkpointer does the common half
// (temporary directory, atomic commit, step metadata) and delegates to its handler.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cairn/checkpoint_args.h"
#include "cairn/file_system.h"
#include "cairn/options.h"
#include "cairn/tree.h"

namespace cairn {

class CheckpointHandler {
 public:
  virtual ~CheckpointHandler() = default;

  // Writes the item into `directory` (which exists and is empty). Wrong args are an InvalidArgumentError.
  virtual void save(const std::filesystem::path& directory, const CheckpointArgs& args) = 0;
  // Reads the item back. `args` may be null: restore what was saved, as it was saved.
  virtual Tree restore(const std::filesystem::path& directory, const CheckpointArgs* args) = 0;
  // What was saved, from metadata files alone: for arrays a tree of ArraySpecs. No array bytes are read.
  virtual Tree metadata(const std::filesystem::path& directory) = 0;
  // Runs once, on the primary host, after every process has saved (merges per-process OCDBT databases).
  virtual void finalize(const std::filesystem::path& directory) { (void)directory; }
  virtual void close() {}
  // Orbax's type string of the equivalent Python handler, recorded in `_CHECKPOINT_METADATA` so that Orbax
  // can restore what cairn wrote without being told the handler.
  virtual std::string typestr() const = 0;
  // What `_CHECKPOINT_METADATA`'s item_handlers records: typestr(), or an object per item for composites.
  virtual nlohmann::json item_handlers() const { return typestr(); }
  // cairn addition: true when save() reads the bytes of the args' arrays only inside a SnapshotRead
  // (src/core/snapshot_read.h). Only then may an asynchronous save hand it copy-on-write snapshots of owned arrays
  // instead of copies; other handlers (a user's own) get copies, as before.
  virtual bool reads_arrays_through_snapshot() const { return false; }

  // A delta save (SaveOptions::delta_base): the checkpointer names, right before save(), the directory that held
  // this item in the base step, and clears it afterwards. Handlers that store arrays share their unchanged chunks
  // with it; the others write everything, as in a full save. Composites hand each item its own subdirectory.
  struct DeltaBase {
    std::filesystem::path item_dir;  // empty: nothing to share, only record the hashes for later deltas
    double max_changed_fraction = 1.0;
  };
  virtual void set_delta_base(std::optional<DeltaBase> base) { delta_base_ = std::move(base); }
  const std::optional<DeltaBase>& delta_base() const { return delta_base_; }

  // The checkpointer hands its FileSystem and options down before any call.
  virtual void Configure(std::shared_ptr<FileSystem> fs, const MultiprocessingOptions& multiprocessing,
                         const FileOptions& file_options) {
    fs_ = std::move(fs);
    multiprocessing_ = multiprocessing;
    file_options_ = file_options;
  }

 protected:
  FileSystem& fs() const { return *fs_; }
  const std::shared_ptr<FileSystem>& fs_ptr() const { return fs_; }
  const MultiprocessingOptions& multiprocessing_options() const { return multiprocessing_; }
  const FileOptions& file_options() const { return file_options_; }

 private:
  std::shared_ptr<FileSystem> fs_ = FileSystem::Default();
  MultiprocessingOptions multiprocessing_;
  FileOptions file_options_;
  std::optional<DeltaBase> delta_base_;
};

// Requires `args` to be of type A; otherwise an InvalidArgumentError naming the handler and what it got.
template <typename A>
const A& ArgsAs(const CheckpointArgs& args, const char* handler) {
  const auto* typed = dynamic_cast<const A*>(&args);
  if (!typed) {
    throw InvalidArgumentError(std::string(handler) + " cannot take " + args.name() + " arguments");
  }
  return *typed;
}

}  // namespace cairn
