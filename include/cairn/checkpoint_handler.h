// CheckpointHandler: the type-specific half of a save or restore. A Checkpointer does the common half
// (temporary directory, atomic commit, step metadata) and delegates to its handler. Each call gets its directory as a
// HandlerDirectory, which carries the checkpointer's FileSystem and options: a handler needs no setup, and one that
// wraps others hands the directory on.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cairn/checkpoint_args.h"
#include "cairn/error.h"
#include "cairn/handler_directory.h"
#include "cairn/tree.h"

namespace cairn {

class CheckpointHandler {
 public:
  virtual ~CheckpointHandler() = default;

  // Writes the item into `directory` (which exists and is empty). Wrong args are an InvalidArgumentError.
  virtual void save(const HandlerDirectory& directory, const CheckpointArgs& args) = 0;
  // Reads the item back. `args` may be null: restore what was saved, as it was saved.
  virtual Tree restore(const HandlerDirectory& directory, const CheckpointArgs* args) = 0;
  // What was saved, from metadata files alone: for arrays a tree of ArraySpecs. No array bytes are read.
  virtual Tree metadata(const HandlerDirectory& directory) = 0;
  // Runs once, on the primary host, after every process has saved (merges per-process OCDBT databases).
  virtual void finalize(const HandlerDirectory& directory) { (void)directory; }
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

  // A delta save (SaveOptions::delta_base) names the base step's directory of this item: directory.delta_base().
  using DeltaBase = HandlerDirectory::DeltaBase;
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
