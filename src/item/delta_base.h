// The base of a delta save, seen from one pytree item (docs/format.md, "Delta steps"): its OCDBT values by key and
// by content, checked before anything of the new step is written; and how one save of the item shares with it.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "cairn/array.h"
#include "cairn/file_system.h"
#include "kvstore/checksummed_kvstore.h"
#include "kvstore/kvstore.h"
#include "kvstore/ocdbt/delta.h"
#include "kvstore/ocdbt/writer.h"
#include "metadata/checksums.h"
#include "zarr/zarr_array.h"

namespace cairn::item {

struct DeltaBase {
  std::shared_ptr<const kvstore::ocdbt::DeltaBaseIndex> index;  // null: the base has no such item (nothing to share)
  metadata::Checksums checksums;                                // the base item's `cairn_checksums/`
  std::string save_id;  // the base's `cairn_delta/` save id; "" when none (or several processes wrote it)
};

// Reads the base item at `base_item_dir`: its root OCDBT tree, `cairn_checksums/` and `cairn_delta/`. Every data
// file a value lies in must be a regular file (not a link) holding the value's byte range. A damaged base (manifest,
// tree, sidecar or data file) is a CorruptionError saying so, before the new step writes anything. A base item
// without `cairn_delta/` (saved without delta tracking, or by Orbax) shares nothing by content; frozen parameters can
// still be taken from it.
DeltaBase LoadDeltaBase(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& base_item_dir);

// The Array::FromShared buffers of one handler's last save with delta tracking, by parameter. Such bytes are
// immutable by contract, so a later delta save against that very save (known by its `cairn_delta/` save id, which
// only this process wrote) takes an array whose buffer is the same (same owner, address, dtype and shape) from the
// base unread. Only weak references are kept: the caller's buffers are not kept alive.
class SavedBuffers {
 public:
  // Whether `array` is the buffer saved as `param` in the save recorded as `save_id` ("" never matches).
  bool Unchanged(const std::string& save_id, const std::string& param, const Array& array) const;
  // After a save recorded as `save_id`: forgets the previous save and remembers the FromShared arrays of this one.
  void Remember(std::string save_id, const std::map<std::string, Array>& arrays);

 private:
  struct Buffer {
    std::weak_ptr<const void> owner;
    const std::byte* data = nullptr;
    DType dtype = DType::kFloat32;
    Shape shape;
  };
  mutable std::mutex mu_;
  std::string save_id_;
  std::map<std::string, Buffer> buffers_;
};

// One delta save of a pytree item against its base (or, with no base, one recording hashes for later deltas): takes
// boxes of parameters from the base (declared frozen or known unchanged), and finds unchanged chunks by the digests
// of their bytes before encoding (a CRC-32C that differs proves a change; an equal SHA-256 proves none), so that
// those are neither encoded nor written. Thread-safe.
class DeltaSave {
 public:
  DeltaSave(std::shared_ptr<FileSystem> fs, std::filesystem::path base_item_dir, DeltaBase base,
            kvstore::OcdbtWriter& writer);

  const DeltaBase& base() const { return base_; }

  // Takes every chunk of the box [origin, origin + shape) of `param` from the base, with its CRC-32Cs recorded in
  // `checksums`. true when done. When the base does not store the parameter alike (dtype, shape, chunks,
  // codec) or lacks a chunk or its CRC: InvalidArgumentError saying so when `declared` (a SaveArgs::frozen
  // parameter), false otherwise (the box is then saved by content).
  bool TakeBox(const std::string& param, const zarr::ZarrMetadata& metadata, const Shape& origin, const Shape& shape,
               bool declared, kvstore::ChecksummedKvStore& checksums);

  // The filter for the chunks of `param` (zarr::WriteZarrChunks): digests each chunk's bytes and shares the base's
  // value when they are unchanged, recording its CRC-32Cs in `checksums`.
  zarr::RawChunkFilter ChunkFilter(const std::string& param, const zarr::ZarrMetadata& metadata,
                                   kvstore::ChecksummedKvStore& checksums);

 private:
  std::optional<zarr::ZarrMetadata> BaseMetadata(const std::string& param);
  // Whether the base stores `param` with exactly `metadata`.
  bool BaseStoresAlike(const std::string& param, const zarr::ZarrMetadata& metadata);
  bool ShareChunk(const std::string& key, std::string_view raw, bool alike, kvstore::ChecksummedKvStore& checksums);
  // Records the base's CRC-32Cs of `key` in `checksums`.
  void CopyChecksums(const std::string& key, kvstore::ChecksummedKvStore& checksums) const;

  const std::shared_ptr<FileSystem> fs_;
  const std::filesystem::path base_item_dir_;
  const DeltaBase base_;
  kvstore::OcdbtWriter& writer_;

  std::mutex mu_;
  std::unique_ptr<kvstore::KvStore> base_store_;  // opened on first use (mu_)
};

}  // namespace cairn::item
