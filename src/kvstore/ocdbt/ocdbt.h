// OCDBT (TensorStore's Optionally-Cooperative Distributed B+Tree), the key-value store inside Orbax checkpoints:
// one entry point per use. See reader.h, writer.h and merge.h for the classes behind them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cairn/file_system.h"
#include "kvstore/kvstore.h"

namespace cairn::kvstore {

// The file that names a database's current state: an OCDBT database is a directory holding it.
inline constexpr const char* kOcdbtManifestFile = "manifest.ocdbt";

// Defaults are what Orbax configures (tensorstore_utils.add_ocdbt_write_options) and what its checkpoints contain.
struct OcdbtWriterOptions {
  uint32_t max_inline_value_bytes = 1024;         // larger values go to data files
  uint32_t max_decoded_node_bytes = 100000000;    // split nodes above this decoded size
  uint64_t target_data_file_size = uint64_t{2} << 30;  // start a new data file past this (2 GiB, Orbax on local disk)
  size_t write_buffer_bytes = size_t{4} << 20;    // data files are written in pieces of this size
  size_t parallel_data_files = 2;                 // values go to this many data files at once, so concurrent
                                                  // writers do not queue behind one file's lock
  bool zstd = true;                               // compress manifests and nodes
  int32_t zstd_level = 0;                         // zstd's default, as TensorStore writes it
};

// The latest generation of the database in `dir`, read-only. NotFoundError naming the manifest if there is none.
// (OcdbtReader in reader.h offers ranged reads as well.)
std::unique_ptr<KvStore> OpenOcdbtForRead(std::shared_ptr<FileSystem> fs, std::filesystem::path dir);

// A new, write-once database in `dir` (created if needed; AlreadyExistsError if it already holds a manifest).
// Flush() writes every node and the manifest; no writes are accepted afterwards.
std::unique_ptr<KvStore> NewOcdbtWriter(std::shared_ptr<FileSystem> fs, std::filesystem::path dir,
                                        OcdbtWriterOptions options = {});

// Orbax's finalize step: builds a new database at `root_dir` holding every key of the databases in
// `root_dir/<child>` for each child ("ocdbt.process_0", ...). Out-of-line values are referenced in place, not
// copied; inline values are copied. A key present in two children is an InvalidArgumentError naming it.
void MergeOcdbtDatabases(std::shared_ptr<FileSystem> fs, const std::filesystem::path& root_dir,
                         const std::vector<std::string>& child_subdirs, OcdbtWriterOptions options = {});

}  // namespace cairn::kvstore
