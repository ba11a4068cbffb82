// The handlers: PyTree (the general one), Standard (arrays and scalars), Array, Json and Composite.
#pragma once

#include <concepts>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "cairn/checkpoint_handler.h"

namespace cairn {

namespace item {
class SavedBuffers;  // src/item/delta_base.h
}  // namespace item

// Orbax's storage options for arrays.
struct PyTreeCheckpointHandlerOptions {
  // OCDBT databases (Orbax's default) or one zarr directory per parameter.
  bool use_ocdbt = true;
  // zarr3 (`zarr.json`, sharded) instead of zarr v2 (`.zarray`).
  bool use_zarr3 = false;
  // Compressed chunks.
  bool use_compression = true;
  // With use_compression, the compressor: "zstd" (Orbax's; each chunk is compressed only where a sample of it
  // shows zstd pays, else written as a zstd frame of raw blocks, which every zstd reader reads), or blosc as
  // TensorStore writes it, with byte shuffle: "blosc-lz4" or "blosc-zstd".
  std::string compressor = "zstd";
  // Bounds on bytes in flight (Orbax's save_concurrent_gb / restore_concurrent_gb).
  int64_t save_concurrent_gb = 96;
  int64_t restore_concurrent_gb = 96;
  // Check every chunk and metadata file against the CRC-32C cairn recorded when it saved them
  // (`cairn_checksums/`); a mismatch is a CorruptionError naming the file or chunk. Checkpoints without
  // checksums (Orbax's) restore as they are.
  bool verify_checksums = true;
  // OCDBT B+tree node size limit (Orbax: 100,000,000 decoded bytes). Smaller values make deeper trees; tests use
  // them to exercise interior nodes.
  uint32_t ocdbt_max_decoded_node_bytes = 100000000;
};

// Saves and restores a Tree of arrays, scalars, strings, empty containers and None, in Orbax's layout:
// `_METADATA`, `_sharding`, `array_metadatas/`, and the arrays as zarr in OCDBT or per-parameter directories.
// Takes args::PyTreeSave / args::PyTreeRestore.
class PyTreeCheckpointHandler : public CheckpointHandler {
 public:
  explicit PyTreeCheckpointHandler(PyTreeCheckpointHandlerOptions options = {});

  void save(const HandlerDirectory& directory, const CheckpointArgs& args) override;
  Tree restore(const HandlerDirectory& directory, const CheckpointArgs* args) override;
  Tree metadata(const HandlerDirectory& directory) override;
  void finalize(const HandlerDirectory& directory) override;
  std::string typestr() const override;
  bool reads_arrays_through_snapshot() const override;

  const PyTreeCheckpointHandlerOptions& options() const { return options_; }

 private:
  PyTreeCheckpointHandlerOptions options_;
  // The Array::FromShared buffers of this handler's last save with delta tracking (a later delta against that save
  // takes them from it unread).
  std::shared_ptr<item::SavedBuffers> saved_buffers_;
};

// Orbax's StandardCheckpointHandler: a tree of arrays (sharded ones too) and scalars (no strings; a bare array is
// rejected).
// Takes args::StandardSave / args::StandardRestore.
class StandardCheckpointHandler : public CheckpointHandler {
 public:
  explicit StandardCheckpointHandler(PyTreeCheckpointHandlerOptions options = {});

  void save(const HandlerDirectory& directory, const CheckpointArgs& args) override;
  Tree restore(const HandlerDirectory& directory, const CheckpointArgs* args) override;
  Tree metadata(const HandlerDirectory& directory) override;
  void finalize(const HandlerDirectory& directory) override;
  std::string typestr() const override;
  bool reads_arrays_through_snapshot() const override { return true; }  // through PyTreeCheckpointHandler

 private:
  PyTreeCheckpointHandler impl_;
};

// Orbax's ArrayCheckpointHandler: one array, saved as `{checkpoint_name: array}` without OCDBT.
// Takes args::ArraySave / args::ArrayRestore; restore returns an array leaf.
class ArrayCheckpointHandler : public CheckpointHandler {
 public:
  explicit ArrayCheckpointHandler(std::string checkpoint_name = "checkpoint");

  void save(const HandlerDirectory& directory, const CheckpointArgs& args) override;
  Tree restore(const HandlerDirectory& directory, const CheckpointArgs* args) override;
  Tree metadata(const HandlerDirectory& directory) override;
  std::string typestr() const override;
  bool reads_arrays_through_snapshot() const override { return true; }  // through PyTreeCheckpointHandler

 private:
  std::string checkpoint_name_;
  PyTreeCheckpointHandler impl_;
};

// Orbax's JsonCheckpointHandler: one JSON document in `<directory>/<filename>`, written by the primary host.
// Takes args::JsonSave / args::JsonRestore; restore returns the JSON as a Tree.
class JsonCheckpointHandler : public CheckpointHandler {
 public:
  explicit JsonCheckpointHandler(std::string filename = "metadata");

  void save(const HandlerDirectory& directory, const CheckpointArgs& args) override;
  Tree restore(const HandlerDirectory& directory, const CheckpointArgs* args) override;
  Tree metadata(const HandlerDirectory& directory) override;
  std::string typestr() const override;
  bool reads_arrays_through_snapshot() const override;

 private:
  std::string filename_;
};

// Orbax's CompositeCheckpointHandler: several named items, each in `<directory>/<item>/` with its own handler.
// Takes args::Composite. Items without a registered handler get the one their args name (`Args::Handler`).
class CompositeCheckpointHandler : public CheckpointHandler {
 public:
  // Items whose handlers are decided by the args they are saved or restored with.
  explicit CompositeCheckpointHandler(std::vector<std::string> item_names = {});
  // Items with explicit handlers.
  explicit CompositeCheckpointHandler(std::map<std::string, std::unique_ptr<CheckpointHandler>> handlers);

  void save(const HandlerDirectory& directory, const CheckpointArgs& args) override;
  // Restores the items `args` names, as a dict by item. With null `args`: every item whose handler is registered
  // or named in the step's `_CHECKPOINT_METADATA`.
  Tree restore(const HandlerDirectory& directory, const CheckpointArgs* args) override;
  Tree metadata(const HandlerDirectory& directory) override;
  void finalize(const HandlerDirectory& directory) override;
  void close() override;
  std::string typestr() const override;
  bool reads_arrays_through_snapshot() const override;
  nlohmann::json item_handlers() const override;

 private:
  CheckpointHandler& HandlerFor(const std::string& item, const CheckpointArgs* args);
  // Registers, for items without a handler, the ones `_CHECKPOINT_METADATA` names (so a step restores with no
  // args, as Orbax restores it).
  void AddHandlersFromStepMetadata(const HandlerDirectory& directory);
  static void CheckItemName(const std::string& item);

  std::vector<std::string> item_names_;
  std::map<std::string, std::unique_ptr<CheckpointHandler>> handlers_;
  // Items whose handler was taken from a step's `_CHECKPOINT_METADATA`: args given later replace it with the
  // handler they call for, when that is another kind.
  std::set<std::string> inferred_items_;
  std::vector<std::string> saved_items_;  // the items of the save in progress, for finalize
};

namespace args {
template <typename Derived>
std::unique_ptr<CheckpointHandler> ArgsBase<Derived>::DefaultHandler() const {
  using Handler = typename Derived::Handler;
  static_assert(std::derived_from<Handler, CheckpointHandler>, "an args type's Handler must be a CheckpointHandler");
  if constexpr (std::default_initializable<Handler>) {
    return std::make_unique<Handler>();
  } else {
    return nullptr;
  }
}
}  // namespace args

}  // namespace cairn
