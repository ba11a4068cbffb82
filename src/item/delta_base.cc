#include "item/delta_base.h"

#include <map>

#include "cairn/error.h"
#include "kvstore/ocdbt/reader.h"
#include "metadata/delta_record.h"

namespace cairn::item {
namespace {

constexpr const char* kManifest = "manifest.ocdbt";

[[noreturn]] void Damaged(const std::filesystem::path& base_item_dir, const std::string& why) {
  throw CorruptionError("cannot save a delta against " + base_item_dir.string() + ": the base is damaged (" + why +
                        ")");
}

}  // namespace

DeltaBase LoadDeltaBase(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& base_item_dir) {
  DeltaBase out;
  if (!fs->IsDirectory(base_item_dir)) return out;  // an item the base step does not have
  const bool tracked = fs->IsDirectory(base_item_dir / metadata::kDeltaDir);
  if (!fs->Exists(base_item_dir / kManifest)) {
    if (tracked) Damaged(base_item_dir, (base_item_dir / kManifest).string() + " is missing");
    return out;  // not an OCDBT item: nothing to share
  }
  auto index = std::make_shared<kvstore::ocdbt::DeltaBaseIndex>();
  std::optional<metadata::DeltaRecordFile> record;
  try {
    out.checksums = metadata::ReadItemChecksums(*fs, base_item_dir);
    record = metadata::ReadItemDeltaRecord(*fs, base_item_dir);
    kvstore::OcdbtReader reader(fs, base_item_dir);
    std::map<std::string, uint64_t> file_sizes;  // relative data file path -> size
    reader.ForEach("", [&](const std::string& key, const kvstore::ocdbt::LeafEntry& entry) {
      if (const auto* inline_value = std::get_if<std::string>(&entry.value)) {
        index->inline_by_key.emplace(key, *inline_value);
        return;
      }
      const auto& ref = std::get<kvstore::ocdbt::IndirectRef>(entry.value);
      const std::string relative = ref.file.FullPath();
      auto size = file_sizes.find(relative);
      if (size == file_sizes.end()) {
        if (relative.empty() || relative.front() == '/' || relative.find("..") != std::string::npos) {
          Damaged(base_item_dir, "value " + key + " lies in a data file outside the item: '" + relative + "'");
        }
        const auto info = fs->StatNoFollow(base_item_dir / relative);
        if (!info || info->is_directory || info->is_symlink) {
          Damaged(base_item_dir, "data file " + (base_item_dir / relative).string() + " is missing or not a file");
        }
        size = file_sizes.emplace(relative, info->size).first;
      }
      if (!ref.IsValidRange() || ref.offset + ref.length > size->second) {
        Damaged(base_item_dir, "value " + key + " runs past the end of " + (base_item_dir / relative).string());
      }
      kvstore::ocdbt::BaseValue value{base_item_dir / relative, ref.offset, ref.length, {}, std::nullopt};
      if (auto crc = out.checksums.chunks.find(key); crc != out.checksums.chunks.end()) value.crc32c = crc->second;
      if (record) {
        if (auto sha = record->sha256.find(key); sha != record->sha256.end()) value.sha256 = sha->second;
      }
      if (!value.sha256.empty()) index->key_by_hash.emplace(value.sha256, key);
      index->by_key.emplace(key, std::move(value));
    });
  } catch (const CorruptionError& e) {
    if (std::string(e.what()).starts_with("cannot save a delta")) throw;
    Damaged(base_item_dir, e.what());
  } catch (const NotFoundError& e) {
    Damaged(base_item_dir, e.what());
  }
  out.index = std::move(index);
  return out;
}

}  // namespace cairn::item
