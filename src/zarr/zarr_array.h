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

// Told of every chunk value as it is stored or read (key, bytes), e.g. to checksum it. `crc32c`, when not null,
// is the CRC-32C of `stored`, already computed by the reader while the bytes were in cache. Called from several
// threads.
using ChunkObserver =
    std::function<void(const std::string& key, std::string_view stored, const uint32_t* crc32c)>;

// Sees every chunk's bytes before they are encoded (key, raw chunk bytes, padded to full size); true when the chunk is
// already stored (a delta save found it unchanged): it is then neither encoded nor written. Called from several
// threads.
using RawChunkFilter = std::function<bool(const std::string& key, std::string_view raw)>;

// For reads of a byte range of a chunk (a box that cuts an uncompressed chunk): the CRC-32Cs of the chunk's
// consecutive blocks of `block_bytes` (the last one shorter), when they were recorded, so that the range is read
// widened to whole blocks and each block checked.
struct ChunkBlockChecksums {
  uint64_t block_bytes = 0;
  std::vector<uint32_t> crcs;
};
using ChunkBlockLookup = std::function<std::optional<ChunkBlockChecksums>(const std::string& key, uint64_t chunk_bytes)>;

// Writes `<param>/.zarray` (or `zarr.json`) and every chunk of `data`, whose dtype and shape must match the
// metadata. Edge chunks are padded to full size with zeros, as TensorStore writes them.
void WriteZarrArray(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& metadata,
                    const Array& data);

// The two halves of WriteZarrArray, for arrays written by several processes: the metadata (written once, by
// the primary process) and the chunks of one box of the array (`data` placed at `origin`). The box must start
// on a chunk boundary and end on one or at the array's edge, as every box of a NamedSharding does when the
// chunk shape divides the shard shape.
void WriteZarrMetadata(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& metadata,
                       const ChunkObserver* written = nullptr);
void WriteZarrChunks(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& metadata,
                     const Array& data, const Shape& origin, const ChunkObserver* written = nullptr,
                     const RawChunkFilter* before_encode = nullptr);

// Reads `<param>/.zarray`, or `<param>/zarr.json` when there is none. NotFoundError naming the parameter
// when neither exists.
// `verify` sees the metadata value before it is parsed, as ReadZarrRegion's does chunks.
ZarrMetadata ReadZarrMetadata(kvstore::KvStore& store, const std::string& param,
                              const ChunkObserver* verify = nullptr);

// Reads the box [origin, origin + shape) of the stored array into a new array of `out_dtype` (cast as
// NumPy's astype) and `shape`; elements outside the stored domain are zero (Orbax's strict=false padding).
// Reads only the chunks the box overlaps; a missing chunk is a CorruptionError naming it.
// `verify`, when given, sees every chunk value read whole, before it is decoded, and throws to reject it. (Chunks
// of which only a byte span is read, for boxes that cut uncompressed chunks, are not shown to it.)
Array ReadZarrRegion(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& metadata,
                     const Shape& origin, const Shape& shape, DType out_dtype,
                     const ChunkObserver* verify = nullptr, const ChunkBlockLookup* blocks = nullptr);

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
