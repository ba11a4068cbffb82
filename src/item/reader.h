// The one reader of a PyTree item: restores (PyTreeCheckpointHandler and the handlers built on it), `metadata()`,
// `DescribeCheckpoint` (`cairn info`), `VerifyCheckpoint` (`cairn verify`) and the CLI open an item through it, so
// that each sees the same files, the same store and the same checks. With checksums on, every metadata file is
// checked against the CRC-32C cairn recorded for it, and every stored value is read through a
// kvstore::ChecksummedKvStore.
//
// A restore wants the first problem, thrown; a verifier wants every problem. Given an ItemCheckSink, the reader
// reports each problem there and goes on, and Check() reads the whole item that way.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/checkpoint_args.h"
#include "cairn/error.h"
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

// Where a checking reader's findings go. Called from several threads at once (Check reads arrays in parallel).
class ItemCheckSink {
 public:
  virtual ~ItemCheckSink() = default;
  // `where` is item-relative ("_METADATA", "params.w/0.0", "ocdbt.process_0"), or "" for the item as a whole.
  virtual void Problem(const std::string& where, const std::string& message) = 0;
  // A fact worth knowing that is not a problem ("no checksums ...").
  virtual void Note(const std::string& note) = 0;
  // Bytes of files and values read, as they are read (a verifier's progress).
  virtual void BytesRead(uint64_t bytes) = 0;
};

// What ItemReader::Check read.
struct ItemCheckCounts {
  uint64_t arrays = 0;              // zarr arrays whose every chunk was read and decoded
  uint64_t chunks = 0;              // chunks read and decoded
  uint64_t chunks_checksummed = 0;  // ... of which checked against a recorded CRC-32C
  uint64_t files_checked = 0;       // metadata files read
  uint64_t files_checksummed = 0;   // ... of which checked against a recorded CRC-32C
};

class ItemReader {
 public:
  // Opens the item at `dir`: reads `cairn_checksums/` (when `verify_checksums`; a metadata file recorded there that
  // is missing is a CorruptionError) and `_METADATA` (checked). The store and the other files are opened on first
  // use, from whichever thread needs them (leaves are read in parallel). With `sink`, a damaged or missing file is
  // reported there instead of thrown (the reader then goes on as if the file were absent).
  ItemReader(std::shared_ptr<FileSystem> fs, std::filesystem::path dir, bool verify_checksums = true,
             ItemCheckSink* sink = nullptr);
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

  // The item's file `relative` ("_METADATA", "array_metadatas/process_0"), read without following links, at most
  // what such a file may hold (MaxFileBytes), and checked against its recorded CRC-32C.
  std::string ReadFile(const std::string& relative) const;
  // What the item's file `relative` may hold: kMaxMetadataFileBytes, or more for the legacy aggregate (which may
  // hold whole arrays) and cairn's per-process files.
  static uint64_t MaxFileBytes(const std::string& relative);
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

  // Reads every file and every value of the item, each checked as a restore checks it, reporting each problem to
  // the sink (required) rather than stopping at the first: the metadata files and cairn's records (each parsed),
  // every OCDBT B+tree node (the root database's and each process's), every chunk the arrays' zarr metadata implies
  // (decoded), and every value the checksums record. reader_check.cc.
  ItemCheckCounts Check();

 private:
  struct Lazy;

  // Runs `fn`; with a sink, a cairn::Error it throws is reported at `where` and false returned. Without one it
  // propagates.
  template <typename Fn>
  bool Guard(const std::string& where, Fn&& fn) const {
    if (!sink_) {
      fn();
      return true;
    }
    try {
      fn();
      return true;
    } catch (const Error& e) {
      sink_->Problem(where, e.what());
      return false;
    }
  }
  void LoadChecksums();
  void LoadArrayFacts();
  Tree ReadBoxes(const std::string& param, const Tree* held, const std::optional<zarr::ZarrMetadata>& zmeta,
                 const ShardedArraySpec& spec, const RestoreArgs* restore_args, bool strict);

  std::shared_ptr<FileSystem> fs_;
  std::filesystem::path dir_;
  bool verify_checksums_;
  ItemLayout layout_;
  metadata::Checksums checksums_;  // empty: nothing to check
  std::optional<metadata::TreeMetadata> saved_tree_;
  std::unique_ptr<Lazy> lazy_;
  // Checking mode: where problems go, and what was read.
  ItemCheckSink* sink_ = nullptr;
  int checksum_files_ = 0;  // `cairn_checksums/` files read and decoded
  mutable std::mutex counts_mu_;
  mutable ItemCheckCounts counts_;
};

// A JSON item's file (JsonCheckpointHandler): its text, checked against `cairn_<file>.crc32c` when that exists.
// nullopt when neither exists.
std::optional<std::string> ReadJsonItemFile(FileSystem& fs, const std::filesystem::path& file);

}  // namespace cairn::item
