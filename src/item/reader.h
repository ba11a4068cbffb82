// The one reader of a PyTree item: restores (PyTreeCheckpointHandler and the handlers built on it), `metadata()`,
// `DescribeCheckpoint` (`cairn info`) and the CLI open an item through it, so that each sees the same files, the
// same store and the same checks. With checksums on, every metadata file is checked against the CRC-32C cairn
// recorded for it, and every stored value is read through a kvstore::ChecksummedKvStore.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cairn/checkpoint_args.h"
#include "cairn/file_system.h"
#include "cairn/tree.h"
#include "item/layout.h"
#include "kvstore/kvstore.h"
#include "metadata/array_metadata.h"
#include "metadata/checksums.h"
#include "metadata/tree_metadata.h"
#include "zarr/zarr_metadata.h"

namespace cairn::item {

// What a restore asks for (args::PyTreeRestore, args::StandardRestore, ...).
struct RestoreRequest {
  Tree item;  // None: restore as saved
  RestoreArgsMap restore_args;
  bool partial_restore = false;
  bool strict = true;
  int64_t restore_concurrent_gb = 96;  // bound on the bytes of leaves read at once
};

class ItemReader {
 public:
  // Opens the item at `dir`: reads `cairn_checksums/` (when `verify_checksums`; a metadata file recorded there that
  // is missing is a CorruptionError) and `_METADATA` (checked). The store and the other files are opened on first
  // use, from whichever thread needs them (leaves are read in parallel).
  ItemReader(std::shared_ptr<FileSystem> fs, std::filesystem::path dir, bool verify_checksums = true);
  ItemReader(const ItemReader&) = delete;
  ItemReader& operator=(const ItemReader&) = delete;
  ~ItemReader();

  const std::filesystem::path& dir() const { return dir_; }
  const ItemLayout& layout() const { return layout_; }
  // `_METADATA` as saved; nullopt when the item has none.
  const std::optional<metadata::TreeMetadata>& saved_tree() const { return saved_tree_; }
  // `_METADATA`, or when there is none, a tree rebuilt from the arrays, the aggregate file and the strings.
  const metadata::TreeMetadata& tree();
  // The item's arrays (the root OCDBT database, or per-parameter directories), read through the checksums.
  kvstore::KvStore& store();

  // The item's file `relative` ("_METADATA", "array_metadatas/process_0"), read without following links and
  // checked against its recorded CRC-32C.
  std::string ReadFile(const std::string& relative, uint64_t max_bytes = kMaxMetadataFileBytes) const;
  // `_strings.json` (null when absent), the legacy aggregate's tree (None when absent), `_sharding` (empty when
  // absent).
  const nlohmann::json& Strings();
  const Tree& Aggregate();
  const std::map<std::string, nlohmann::json>& Shardings();
  // The aggregate file's value at `path`.
  const Tree& AggregateValue(const KeyPath& path);
  // The zarr metadata of an array (checked), and held against `array_metadatas/` when it records the array.
  zarr::ZarrMetadata ArrayMetadata(const std::string& param);

  // The value stored for `entry`, shaped by `target` (None: as saved) and `restore_args`.
  Tree Read(const metadata::TreeMetadataEntry& entry, const Tree& target, const RestoreArgs* restore_args,
            bool strict);
  // The whole restore: every entry, or the target's leaves, read in parallel.
  Tree Restore(const RestoreRequest& request);
  // The tree with an ArraySpec for each array (PyTreeCheckpointHandler::metadata).
  Tree Metadata();

 private:
  struct Lazy;

  void LoadChecksums();
  Tree ReadBoxes(const std::string& param, const Tree* held, const std::optional<zarr::ZarrMetadata>& zmeta,
                 const ShardedArraySpec& spec, const RestoreArgs* restore_args, bool strict);

  std::shared_ptr<FileSystem> fs_;
  std::filesystem::path dir_;
  bool verify_checksums_;
  ItemLayout layout_;
  metadata::Checksums checksums_;  // empty: nothing to check
  std::optional<metadata::TreeMetadata> saved_tree_;
  std::unique_ptr<Lazy> lazy_;
};

// A JSON item's file (JsonCheckpointHandler): its text, checked against `cairn_<file>.crc32c` when that exists.
// nullopt when neither exists.
std::optional<std::string> ReadJsonItemFile(FileSystem& fs, const std::filesystem::path& file);

}  // namespace cairn::item
