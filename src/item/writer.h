// The one writer of a PyTree item (Orbax's layout; docs/format.md): PyTreeCheckpointHandler's save, and so the
// Standard and Array handlers', goes through it. WriteItem runs four steps, each a function of writer.cc: the plan
// (PlanItem: one storage decision per leaf: array, scalar, string, placeholder, empty node; the zarr metadata of
// each array), the store (ItemStore: the item's KvStore behind a kvstore::ChecksummedKvStore that records the
// CRC-32C of each value, and in a delta save the sharing with the base), the encoding (EncodeAndWriteChunks: arrays
// cast, chunked and compressed in parallel into that store), and the metadata files (WriteMetadataFiles:
// `_METADATA`, `_sharding`, `array_metadatas/`, `_strings.json`; WriteDeltaRecord: `cairn_delta/`; last,
// `cairn_checksums/`).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "cairn/checkpoint_args.h"
#include "cairn/checkpoint_handler.h"
#include "cairn/file_system.h"
#include "cairn/handlers.h"
#include "cairn/tree.h"

namespace cairn::item {

class SavedBuffers;  // item/delta_base.h

// What a save asks for (args::PyTreeSave, args::StandardSave, ...).
struct SaveRequest {
  Tree item;
  SaveArgsMap save_args;
  nlohmann::json custom_metadata;
  std::optional<int64_t> ocdbt_target_data_file_size;
};

// Who writes: Orbax's division of labour is that every process writes the unique shards it holds (replica 0) into
// its own `ocdbt.process_<i>/`, and the primary also writes whole (unsharded) arrays, scalars, strings and every
// metadata file. All processes hold the same tree, so they agree on the metadata without talking.
struct Writer {
  int process = 0;
  int process_count = 1;
  bool primary = true;
  // A delta save (docs/format.md, "Delta steps"), when set.
  std::optional<CheckpointHandler::DeltaBase> delta;
  // The Array::FromShared buffers of the handler's last save with delta tracking (delta_base.h); may be null.
  std::shared_ptr<SavedBuffers> saved_buffers;
};

// Writes this process's part of the item at `dir`.
void WriteItem(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& dir,
               const PyTreeCheckpointHandlerOptions& options, const Writer& writer, const SaveRequest& request);

}  // namespace cairn::item
