#include "handlers/array_storage.h"

#include "cairn/error.h"
#include "kvstore/directory_kvstore.h"

namespace cairn::handlers {

std::unique_ptr<kvstore::KvStore> OpenArrayStoreForWrite(const std::shared_ptr<FileSystem>& fs,
                                                         const std::filesystem::path& item_dir,
                                                         const PyTreeCheckpointHandlerOptions& options,
                                                         int process_index,
                                                         std::optional<int64_t> target_data_file_size) {
  (void)process_index;
  (void)target_data_file_size;
  if (options.use_ocdbt) throw UnimplementedError("OCDBT storage is not available in this build yet");
  return std::make_unique<kvstore::DirectoryKvStore>(fs, item_dir);
}

void FinalizeArrayStore(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& item_dir) {
  (void)fs;
  (void)item_dir;
}

std::unique_ptr<kvstore::KvStore> OpenArrayStoreForRead(const std::shared_ptr<FileSystem>& fs,
                                                        const std::filesystem::path& item_dir,
                                                        std::optional<bool> use_ocdbt) {
  const bool has_manifest = fs->Exists(item_dir / "manifest.ocdbt");
  if (has_manifest) throw UnimplementedError("OCDBT storage is not available in this build yet");
  if (use_ocdbt.value_or(false)) {
    throw NotFoundError("checkpoint item " + item_dir.string() + " uses OCDBT but its root database file " +
                        (item_dir / "manifest.ocdbt").string() + " is missing");
  }
  return std::make_unique<kvstore::DirectoryKvStore>(fs, item_dir);
}

}  // namespace cairn::handlers
