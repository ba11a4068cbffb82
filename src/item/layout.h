// The files of one PyTree item (Orbax's layout for an item, plus cairn's own), and what a given item holds.
// Every part of cairn that opens an item takes the names from here (docs/format.md lists them).
#pragma once

#include <filesystem>
#include <string>

#include "cairn/file_system.h"
#include "kvstore/ocdbt/ocdbt.h"
#include "metadata/array_metadata.h"
#include "metadata/checksums.h"
#include "metadata/delta_record.h"
#include "metadata/legacy_aggregate.h"
#include "metadata/tree_metadata.h"

namespace cairn::item {

// Orbax's files.
inline constexpr const char* kTreeMetadataFile = metadata::kTreeMetadataFile;      // _METADATA
inline constexpr const char* kShardingFile = metadata::kShardingFile;              // _sharding
inline constexpr const char* kArrayMetadatasDir = metadata::kArrayMetadatasDir;    // array_metadatas/process_<i>
inline constexpr const char* kStringsFile = "_strings.json";                       // string leaves
inline constexpr const char* kLegacyAggregateFile = metadata::kLegacyAggregateFile;  // msgpack `checkpoint`
inline constexpr const char* kOcdbtManifest = kvstore::kOcdbtManifestFile;          // the root OCDBT database
inline constexpr const char* kOcdbtProcessPrefix = "ocdbt.process_";               // ocdbt.process_<i>/
// cairn's own (Orbax ignores them).
inline constexpr const char* kChecksumsDir = metadata::kChecksumsDir;  // cairn_checksums/process_<i>
inline constexpr const char* kDeltaDir = metadata::kDeltaDir;          // cairn_delta/process_<i>

// The per-process file `process_<i>` of array_metadatas/, cairn_checksums/ and cairn_delta/.
std::string ProcessFile(int process);
// `ocdbt.process_<i>`.
std::string OcdbtProcessDir(int process);
// Whether `name` is an `ocdbt.process_<i>` entry.
bool IsOcdbtProcessDir(const std::string& name);

// What an item directory holds, found by looking (without reading any file).
struct ItemLayout {
  bool ocdbt = false;          // manifest.ocdbt: arrays in the root OCDBT database, else per-parameter directories
  int ocdbt_processes = 0;     // ocdbt.process_<i>/ databases (the per-process halves of a multi-process save)
  int array_metadata_files = 0;
  bool tree_metadata = false;  // _METADATA (Orbax's older checkpoints may lack it)
  bool strings = false;        // _strings.json
  bool legacy_aggregate = false;  // the msgpack `checkpoint` file of older Orbax versions
  bool checksums = false;      // cairn_checksums/ (saved by cairn)
  bool delta = false;          // cairn_delta/ (a delta step's records)

  // The processes that saved the item, as far as the files tell (at least 1).
  int processes() const;
};
ItemLayout DetectItemLayout(FileSystem& fs, const std::filesystem::path& item_dir);

}  // namespace cairn::item
