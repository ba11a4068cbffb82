// Where an item's arrays live: an OCDBT database (Orbax's default) or one zarr directory per parameter.
// The handlers see only a KvStore; this file decides which one.
#pragma once

#include <filesystem>
#include <memory>

#include "cairn/file_system.h"
#include "cairn/handlers.h"
#include "kvstore/kvstore.h"

namespace cairn::item {

// The store a process writes into: `<item>/ocdbt.process_<i>/` with OCDBT, or `<item>/` itself without.
std::unique_ptr<kvstore::KvStore> OpenArrayStoreForWrite(const std::shared_ptr<FileSystem>& fs,
                                                         const std::filesystem::path& item_dir,
                                                         const PyTreeCheckpointHandlerOptions& options,
                                                         int process_index,
                                                         std::optional<int64_t> target_data_file_size);

// After every process has written: with OCDBT, builds the root database that readers open, referring to the
// per-process data files without copying them.
void FinalizeArrayStore(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& item_dir,
                        const PyTreeCheckpointHandlerOptions& options);

// The store a reader opens: the root OCDBT database when `manifest.ocdbt` exists, else per-parameter
// directories. `use_ocdbt` is what `_METADATA` says, when it says anything: an OCDBT checkpoint without its
// root manifest is a NotFoundError naming it, never an empty restore.
std::unique_ptr<kvstore::KvStore> OpenArrayStoreForRead(const std::shared_ptr<FileSystem>& fs,
                                                        const std::filesystem::path& item_dir,
                                                        std::optional<bool> use_ocdbt);

}  // namespace cairn::item
