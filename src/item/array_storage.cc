#include "item/array_storage.h"

#include "cairn/error.h"
#include "kvstore/directory_kvstore.h"
#include "kvstore/ocdbt/ocdbt.h"
#include "item/layout.h"

namespace cairn::item {

std::unique_ptr<kvstore::KvStore> OpenArrayStoreForWrite(const std::shared_ptr<FileSystem>& fs,
                                                         const std::filesystem::path& item_dir,
                                                         const PyTreeCheckpointHandlerOptions& options,
                                                         int process_index,
                                                         std::optional<int64_t> target_data_file_size) {
  if (!options.use_ocdbt) return std::make_unique<kvstore::DirectoryKvStore>(fs, item_dir);
  kvstore::OcdbtWriterOptions ocdbt;
  ocdbt.max_decoded_node_bytes = options.ocdbt_max_decoded_node_bytes;
  if (target_data_file_size) {
    if (*target_data_file_size <= 0) throw InvalidArgumentError("ocdbt_target_data_file_size must be positive");
    ocdbt.target_data_file_size = static_cast<uint64_t>(*target_data_file_size);
  }
  return kvstore::NewOcdbtWriter(fs, item_dir / OcdbtProcessDir(process_index),
                                 ocdbt);
}

void FinalizeArrayStore(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& item_dir,
                        const PyTreeCheckpointHandlerOptions& options) {
  std::vector<std::string> children;
  for (const auto& name : fs->ListDir(item_dir)) {
    if (IsOcdbtProcessDir(name) && fs->IsDirectory(item_dir / name)) children.push_back(name);
  }
  if (children.empty()) return;  // nothing was written with OCDBT
  kvstore::OcdbtWriterOptions ocdbt;
  ocdbt.max_decoded_node_bytes = options.ocdbt_max_decoded_node_bytes;
  kvstore::MergeOcdbtDatabases(fs, item_dir, children, ocdbt);
}

std::unique_ptr<kvstore::KvStore> OpenArrayStoreForRead(const std::shared_ptr<FileSystem>& fs,
                                                        const std::filesystem::path& item_dir,
                                                        std::optional<bool> use_ocdbt) {
  if (fs->Exists(item_dir / kOcdbtManifest)) return kvstore::OpenOcdbtForRead(fs, item_dir);
  bool has_process_databases = false;
  if (fs->IsDirectory(item_dir)) {
    for (const auto& name : fs->ListDir(item_dir)) {
      if (IsOcdbtProcessDir(name)) has_process_databases = true;
    }
  }
  if (use_ocdbt.value_or(false) || has_process_databases) {
    throw NotFoundError("checkpoint item " + item_dir.string() + " uses OCDBT but its root database file " +
                        (item_dir / kOcdbtManifest).string() + " is missing");
  }
  return std::make_unique<kvstore::DirectoryKvStore>(fs, item_dir);
}

}  // namespace cairn::item
