#include "item/delta_base.h"

#include <map>

#include "cairn/error.h"
#include "core/crc32c.h"
#include "core/sha256.h"
#include "kvstore/ocdbt/reader.h"
#include "metadata/delta_record.h"
#include "item/layout.h"

namespace cairn::item {
namespace {


[[noreturn]] void Damaged(const std::filesystem::path& base_item_dir, const std::string& why) {
  throw CorruptionError("cannot save a delta against " + base_item_dir.string() + ": the base is damaged (" + why +
                        ")");
}

}  // namespace

DeltaBase LoadDeltaBase(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& base_item_dir) {
  DeltaBase out;
  if (!fs->IsDirectory(base_item_dir)) return out;  // an item the base step does not have
  const bool tracked = fs->IsDirectory(base_item_dir / metadata::kDeltaDir);
  if (!fs->Exists(base_item_dir / kOcdbtManifest)) {
    if (tracked) Damaged(base_item_dir, (base_item_dir / kOcdbtManifest).string() + " is missing");
    return out;  // not an OCDBT item: nothing to share
  }
  auto index = std::make_shared<kvstore::ocdbt::DeltaBaseIndex>();
  std::optional<metadata::DeltaRecordFile> record;
  try {
    out.checksums = metadata::ReadItemChecksums(*fs, base_item_dir);
    record = metadata::ReadItemDeltaRecord(*fs, base_item_dir);
    if (record) out.save_id = record->save_id;
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
      kvstore::ocdbt::BaseValue value{base_item_dir / relative, ref.offset, ref.length, {}, {}, std::nullopt, std::nullopt};
      if (auto crc = out.checksums.chunks.find(key); crc != out.checksums.chunks.end()) value.crc32c = crc->second;
      if (record) {
        if (auto sha = record->sha256.find(key); sha != record->sha256.end()) value.sha256 = sha->second;
        if (auto raw = record->raw_sha256.find(key); raw != record->raw_sha256.end()) value.raw_sha256 = raw->second;
        if (auto raw = record->raw_crc32c.find(key); raw != record->raw_crc32c.end()) value.raw_crc32c = raw->second;
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

bool SavedBuffers::Unchanged(const std::string& save_id, const std::string& param, const Array& array) const {
  const std::weak_ptr<const void> owner = array.shared_owner();
  if (save_id.empty() || owner.expired()) return false;
  std::lock_guard lock(mu_);
  if (save_id != save_id_) return false;
  auto it = buffers_.find(param);
  if (it == buffers_.end()) return false;
  const Buffer& saved = it->second;
  // Equal owners share one control block, which the weak reference kept alive: the very buffer, not a new one at a
  // reused address.
  const bool same_owner = !saved.owner.owner_before(owner) && !owner.owner_before(saved.owner);
  return same_owner && saved.data == array.bytes().data() && saved.dtype == array.dtype() &&
         saved.shape == array.shape();
}

void SavedBuffers::Remember(std::string save_id, const std::map<std::string, Array>& arrays) {
  std::map<std::string, Buffer> buffers;
  for (const auto& [param, array] : arrays) {
    if (array.ownership() != Ownership::kShared) continue;
    buffers[param] = Buffer{array.shared_owner(), array.bytes().data(), array.dtype(), array.shape()};
  }
  std::lock_guard lock(mu_);
  save_id_ = std::move(save_id);
  buffers_ = std::move(buffers);
}

DeltaSave::DeltaSave(std::shared_ptr<FileSystem> fs, std::filesystem::path base_item_dir, DeltaBase base,
                     kvstore::OcdbtWriter& writer)
    : fs_(std::move(fs)), base_item_dir_(std::move(base_item_dir)), base_(std::move(base)), writer_(writer) {}

std::optional<zarr::ZarrMetadata> DeltaSave::BaseMetadata(const std::string& param) {
  std::lock_guard lock(mu_);
  if (!base_store_) base_store_ = kvstore::OpenOcdbtForRead(fs_, base_item_dir_);
  try {
    return zarr::ReadZarrMetadata(*base_store_, param);
  } catch (const NotFoundError&) {
    return std::nullopt;
  }
}

bool DeltaSave::BaseStoresAlike(const std::string& param, const zarr::ZarrMetadata& metadata) {
  if (!base_.index) return false;
  const std::optional<zarr::ZarrMetadata> stored = BaseMetadata(param);
  return stored && zarr::EncodeZarrMetadata(*stored) == zarr::EncodeZarrMetadata(metadata);
}

void DeltaSave::CopyChecksums(const std::string& key, kvstore::ChecksummedKvStore& checksums) const {
  auto blocks = base_.checksums.chunk_blocks.find(key);
  checksums.Record(key, base_.checksums.chunks.at(key),
                   blocks != base_.checksums.chunk_blocks.end() ? blocks->second : std::vector<uint32_t>{});
}

bool DeltaSave::TakeBox(const std::string& param, const zarr::ZarrMetadata& metadata, const Shape& origin,
                        const Shape& shape, bool declared, kvstore::ChecksummedKvStore& checksums) {
  if (!base_.index) return false;
  const std::string base_dir = base_item_dir_.string();
  if (!BaseStoresAlike(param, metadata)) {
    if (!declared) return false;
    throw InvalidArgumentError("parameter " + param + " is declared frozen, but the delta base " + base_dir +
                               (BaseMetadata(param) ? " stores it with another dtype, shape, chunking or compression"
                                                    : " does not hold it"));
  }
  std::vector<std::string> keys;
  zarr::ForEachChunkKeyInBox(metadata, origin, shape,
                             [&](const std::string& chunk) { keys.push_back(param + "/" + chunk); });
  for (const std::string& key : keys) {
    const bool held = base_.index->by_key.contains(key) || base_.index->inline_by_key.contains(key);
    if (held && base_.checksums.chunks.contains(key)) continue;
    if (!declared) return false;
    throw InvalidArgumentError("parameter " + param + " is declared frozen, but chunk " + key + " of the delta base " +
                               base_dir + " is missing or unchecked");
  }
  for (const std::string& key : keys) {
    if (!writer_.WriteFromBase(key)) {
      throw InvalidArgumentError("chunk " + key + " of the delta base " + base_dir + " is missing");
    }
    CopyChecksums(key, checksums);
  }
  return true;
}

zarr::RawChunkFilter DeltaSave::ChunkFilter(const std::string& param, const zarr::ZarrMetadata& metadata,
                                            kvstore::ChecksummedKvStore& checksums) {
  const bool alike = BaseStoresAlike(param, metadata);
  return [this, alike, &checksums](const std::string& key, std::string_view raw) {
    return ShareChunk(key, raw, alike, checksums);
  };
}

bool DeltaSave::ShareChunk(const std::string& key, std::string_view raw, bool alike,
                           kvstore::ChecksummedKvStore& checksums) {
  const kvstore::ocdbt::BaseValue* prior = nullptr;
  if (alike) {
    auto it = base_.index->by_key.find(key);
    // Shared values take their CRC-32C from the base's checksums: without one the chunk is written anew.
    if (it != base_.index->by_key.end() && base_.checksums.chunks.contains(key)) prior = &it->second;
  }
  // A CRC-32C that differs from the base's proves the chunk changed, at a fraction of SHA-256's cost: a step in which
  // everything changed computes no SHA-256 at all. Its chunks then have no SHA-256 in this step's record; a later
  // save against it hashes those whose CRC-32C matches and writes them once more before it can share them.
  const uint32_t crc = Crc32c(raw);
  if (prior && prior->raw_crc32c && *prior->raw_crc32c != crc) {
    writer_.ShareIfUnchanged(key, crc, "", false);
    return false;
  }
  // SHA-256 alone decides (docs/format.md, "Delta steps"): equal digests of unequal inputs are not known to exist;
  // finding a pair costs about 2^128 work.
  const std::string sha = Sha256(raw);
  if (!writer_.ShareIfUnchanged(key, crc, sha, prior && !prior->raw_sha256.empty())) return false;
  CopyChecksums(key, checksums);
  return true;
}

}  // namespace cairn::item
