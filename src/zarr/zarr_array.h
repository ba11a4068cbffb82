// Reading and writing one zarr array (v2 or zarr3) through a KvStore, under the key prefix `<param>/`.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/array.h"
#include "kvstore/kvstore.h"
#include "zarr/zarr_metadata.h"

namespace cairn::zarr {

// Sees every chunk's bytes before they are encoded (key, raw chunk bytes, padded to full size); true when the chunk is
// already stored (a delta save found it unchanged): it is then neither encoded nor written. Called from several
// threads.
using RawChunkFilter = std::function<bool(const std::string& key, std::string_view raw)>;

// Writes `<param>/.zarray` (or `zarr.json`) and every chunk of `data`, whose dtype and shape must match the
// metadata. Edge chunks are padded to full size with zeros, as TensorStore writes them.
void WriteZarrArray(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& metadata,
                    const Array& data);

// The two halves of WriteZarrArray, for arrays written by several processes: the metadata (written once, by
// the primary process) and the chunks of one box of the array (`data` placed at `origin`). The box must start
// on a chunk boundary and end on one or at the array's edge, as every box of a NamedSharding does when the
// chunk shape divides the shard shape.
void WriteZarrMetadata(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& metadata);
void WriteZarrChunks(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& metadata,
                     const Array& data, const Shape& origin, const RawChunkFilter* before_encode = nullptr);

// Reads `<param>/.zarray`, or `<param>/zarr.json` when there is none. NotFoundError naming the parameter
// when neither exists.
// Checking stored bytes is the store's business (kvstore::ChecksummedKvStore).
ZarrMetadata ReadZarrMetadata(kvstore::KvStore& store, const std::string& param);

// Reads the box [origin, origin + shape) of the stored array into a new array of `out_dtype` (cast as
// NumPy's astype) and `shape`; elements outside the stored domain are zero (Orbax's strict=false padding).
// Reads only the chunks the box overlaps; a missing chunk is a CorruptionError naming it.
// Of an uncompressed chunk that the box cuts, only the byte span the box needs is read (KvStore::ReadRange).
Array ReadZarrRegion(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& metadata,
                     const Shape& origin, const Shape& shape, DType out_dtype);
// The same into `out` (RestoreArgs::fill_target: the caller's array), which must be writable and have exactly
// `shape`; its dtype is the one read into (cast in place). ReadZarrRegion allocates and calls this: one code path.
// Uncompressed whole chunks land in `out` by KvStore::ReadInto (checked by a ChecksummedKvStore as any read),
// compressed ones decode into it, where the chunk's box in `out` is contiguous; other chunks go through scratch.
// `out` is zeroed only where no chunk covers it (strict=false padding, empty shards). InvalidArgumentError for a
// rank, shape or writability mismatch, before anything is read.
void ReadZarrRegionInto(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& metadata,
                        const Shape& origin, const Shape& shape, Array& out);

// RestoreArgs::lazy: the region as read-only memory over the value's file (KvStore::MapValue; `check` says when a
// ChecksummedKvStore checks it), when the region is the whole array, stored as one uncompressed chunk of exactly
// the array's shape (zarr v2, or zarr3 without sharding), read in its stored dtype, and the mapping's address is
// aligned to the dtype's item size. nullopt otherwise, and where the store cannot map: the caller reads eagerly.
// The Array (Ownership::kShared) keeps the mapping alive.
std::optional<Array> MapZarrRegion(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& metadata,
                                   const Shape& origin, const Shape& shape, DType out_dtype, kvstore::MapCheck check);

// For checking a stored array chunk by chunk (`cairn verify`):
// The number of chunks in the array's grid; CorruptionError when a chunk dimension is not positive or the count
// overflows.
uint64_t NumChunks(const ZarrMetadata& metadata, const std::string& what);
// Calls fn(key) with the key of every chunk of the grid, relative to the array ("0.0", "c/0/1"), in C order.
void ForEachChunkKey(const ZarrMetadata& metadata, const std::function<void(const std::string& key)>& fn);
// The same for the chunks of the box [origin, origin + shape) only (a box that tiles the chunk grid, as
// WriteZarrChunks requires).
void ForEachChunkKeyInBox(const ZarrMetadata& metadata, const Shape& origin, const Shape& shape,
                          const std::function<void(const std::string& key)>& fn);
// The most a stored chunk value of this array can hold (its bytes, or zstd's worst case of them, with a shard's
// index and checksums): a larger value is refused before it is read (its size comes from the disk).
uint64_t MaxStoredChunkBytes(const ZarrMetadata& metadata);
// Decodes one stored chunk value, read whole, as a read would (shard index and its CRC-32C, zstd frame, size).
// false: a zarr3 shard whose chunk is marked missing (it reads as the fill value). CorruptionError naming `what`.
bool DecodeZarrChunk(const ZarrMetadata& metadata, std::string_view stored, const std::string& what);

}  // namespace cairn::zarr
