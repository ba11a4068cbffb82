#include "zarr/zarr_array.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>

#include "cairn/error.h"
#include "cairn/file_system.h"
#include "core/memory_limit.h"
#include "core/crc32c.h"
#include "core/box_copy.h"
#include "core/thread_pool.h"
#include "zarr/blosc_codec.h"
#include "core/little_endian.h"
#include "core/zstd.h"

namespace cairn::zarr {
namespace {

constexpr uint64_t kMissing = ~uint64_t{0};


// Calls fn(grid_index) for every chunk index in [lo, hi) per dimension, in C order.
template <typename Fn>
void ForEachChunk(const std::vector<int64_t>& lo, const std::vector<int64_t>& hi, Fn&& fn) {
  for (size_t d = 0; d < lo.size(); ++d) {
    if (lo[d] >= hi[d]) return;
  }
  std::vector<int64_t> index = lo;
  while (true) {
    fn(index);
    size_t d = index.size();
    while (d > 0) {
      --d;
      if (++index[d] < hi[d]) break;
      index[d] = lo[d];
      if (d == 0) return;
    }
    if (index.empty()) return;
  }
}

std::string EncodeChunk(const ZarrMetadata& m, std::string_view raw) {
  std::string encoded = m.zstd_level ? ZstdCompressAdaptive(raw, *m.zstd_level)
                        : m.blosc    ? BloscCompress(raw, *m.blosc, ItemSize(m.dtype))
                                     : std::string(raw);
  if (m.format == ZarrFormat::kV2 || !m.zarr3_sharded) return encoded;
  // A shard holding one inner chunk: the chunk, then the index (offset, length) and its CRC-32C.
  std::string index;
  AppendLe(index, 0, 8);
  AppendLe(index, encoded.size(), 8);
  AppendLe(index, Crc32c(index), 4);
  encoded += index;
  return encoded;
}

// Decodes a stored chunk into `out` (chunk_bytes long). Returns false for a zarr3 shard whose only inner chunk
// is marked missing (it then reads as the fill value, zero).
bool DecodeChunk(const ZarrMetadata& m, std::string_view stored, char* out, size_t chunk_bytes,
                 const std::string& what) {
  std::string_view encoded = stored;
  if (m.format == ZarrFormat::kV3 && m.zarr3_sharded) {
    constexpr size_t kIndexBytes = 16 + 4;
    if (stored.size() < kIndexBytes) throw CorruptionError(what + ": shard is too short for its index");
    const char* index = stored.data() + stored.size() - kIndexBytes;
    if (Crc32c(std::string_view(index, 16)) != static_cast<uint32_t>(LoadLe(index + 16, 4))) {
      throw CorruptionError(what + ": shard index fails its CRC-32C");
    }
    uint64_t offset = LoadLe(index, 8), length = LoadLe(index + 8, 8);
    if (offset == kMissing && length == kMissing) return false;
    const uint64_t body = stored.size() - kIndexBytes;
    if (offset > body || length > body - offset) throw CorruptionError(what + ": shard index points outside the shard");
    encoded = stored.substr(offset, length);
  }
  if (m.zstd_level) {
    ZstdDecompressInto(encoded, out, chunk_bytes, what);
  } else if (m.blosc) {
    BloscDecompressInto(encoded, out, chunk_bytes, what);
  } else {
    if (encoded.size() != chunk_bytes) {
      throw CorruptionError(what + ": holds " + std::to_string(encoded.size()) + " bytes, expected " +
                            std::to_string(chunk_bytes));
    }
    std::memcpy(out, encoded.data(), chunk_bytes);
  }
  return true;
}

// DecodeChunk, with the file (and byte range) holding the chunk added to a corruption error.
// Outputs from this size on are allocated only once the store is seen to hold every chunk they need (below it, a
// lying shape costs little, and the listing would cost more than it saves).
constexpr uint64_t kCheckChunksAboveBytes = uint64_t{64} << 20;

// Shapes come from the disk: a `.zarray` may claim a huge array of tiny chunks. Before the output is allocated and
// zero-filled, the store must hold a value for every chunk of the grid box [lo, hi), so that such a lie fails at
// once, naming a missing chunk, instead of after touching the whole claimed array. One listing of the parameter's
// keys; the grid is walked only as far as the first chunk missing from it.
void RequireChunksPresent(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& m,
                          const std::vector<int64_t>& lo, const std::vector<int64_t>& hi) {
  uint64_t needed = 1;
  for (size_t d = 0; d < lo.size(); ++d) {
    if (__builtin_mul_overflow(needed, static_cast<uint64_t>(hi[d] - lo[d]), &needed)) needed = UINT64_MAX;
  }
  const std::string prefix = param + "/";
  const std::vector<std::string> keys = store.ListKeys(prefix);
  if (needed <= keys.size()) return;  // (a metadata key among them at most hides one missing chunk, found on read)
  const std::set<std::string> present(keys.begin(), keys.end());
  ForEachChunk(lo, hi, [&](const std::vector<int64_t>& index) {
    const std::string key = prefix + m.ChunkKey(index);
    if (!present.count(key)) {
      throw CorruptionError("chunk " + key + " in " + store.Describe() + " is missing (the zarr metadata implies " +
                            std::to_string(needed) + " chunks here; the store holds " + std::to_string(keys.size()) +
                            " values for " + param + ")");
    }
  });
}

bool DecodeNamingFile(kvstore::KvStore& store, const std::string& key, const ZarrMetadata& m, std::string_view stored,
                      char* out, size_t chunk_bytes, const std::string& what) {
  try {
    return DecodeChunk(m, stored, out, chunk_bytes, what);
  } catch (const CorruptionError& e) {
    throw CorruptionError(std::string(e.what()) + " [" + store.DescribeKey(key) + "]");
  }
}

}  // namespace

void WriteZarrMetadata(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& m) {
  store.Write(param + "/" + m.MetadataKey(), EncodeZarrMetadata(m));
}

void WriteZarrChunks(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& m, const Array& data,
                     const Shape& origin, const RawChunkFilter* before_encode) {
  auto put = [&](const std::string& key, std::string value) { store.Write(key, std::move(value)); };
  auto stored_already = [&](const std::string& key, std::string_view raw) {
    return before_encode && (*before_encode)(key, raw);
  };
  const size_t rank = m.shape.size();
  bool fits = data.dtype() == m.dtype && data.rank() == static_cast<int64_t>(rank) && origin.size() == rank;
  for (size_t d = 0; fits && d < rank; ++d) {
    const int64_t end = origin[d] + data.shape()[d];
    // The box starts on a chunk boundary and ends on one, or at the array's edge: chunks never straddle boxes.
    fits = origin[d] >= 0 && origin[d] % m.chunks[d] == 0 && end <= m.shape[d] &&
           (end == m.shape[d] || end % m.chunks[d] == 0);
  }
  if (!fits) {
    throw InvalidArgumentError("parameter " + param + ": a " + std::string(DTypeName(data.dtype())) +
                               ShapeToString(data.shape()) + " box at " + ShapeToString(origin) +
                               " does not tile the chunk grid " + ShapeToString(m.chunks) + " of " +
                               std::string(DTypeName(m.dtype)) + ShapeToString(m.shape));
  }
  const size_t item = ItemSize(m.dtype);
  const size_t chunk_bytes = NumBytes(m.dtype, m.chunks);
  if (m.format == ZarrFormat::kV2 && !m.compressed() && m.chunks == data.shape()) {
    // One uncompressed chunk holding exactly the box: its bytes are the chunk, written without a copy.
    std::vector<int64_t> index(rank);
    for (size_t d = 0; d < rank; ++d) index[d] = origin[d] / m.chunks[d];
    const auto bytes = data.bytes();
    const std::string key = param + "/" + m.ChunkKey(index);
    const std::string_view view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (stored_already(key, view)) return;
    store.WriteView(key, view);
    return;
  }
  if (m.chunks == data.shape()) {
    // One chunk holding exactly the box: encoded straight from the array's bytes.
    std::vector<int64_t> index(rank);
    for (size_t d = 0; d < rank; ++d) index[d] = origin[d] / m.chunks[d];
    const auto bytes = data.bytes();
    const std::string key = param + "/" + m.ChunkKey(index);
    const std::string_view raw(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (!stored_already(key, raw)) put(key, EncodeChunk(m, raw));
    return;
  }
  std::vector<int64_t> lo(rank), hi(rank);
  for (size_t d = 0; d < rank; ++d) {
    lo[d] = origin[d] / m.chunks[d];
    hi[d] = (origin[d] + data.shape()[d] + m.chunks[d] - 1) / m.chunks[d];
  }
  ForEachChunk(lo, hi, [&](const std::vector<int64_t>& index) {
    std::string raw(chunk_bytes, '\0');  // zero padding beyond the array's edge
    std::vector<int64_t> src(rank), extent(rank), zero(rank, 0);
    for (size_t d = 0; d < rank; ++d) {
      const int64_t chunk_origin = index[d] * m.chunks[d];
      src[d] = chunk_origin - origin[d];
      extent[d] = std::min(m.chunks[d], m.shape[d] - chunk_origin);
    }
    CopyBox(data.bytes().data(), data.shape(), src, reinterpret_cast<std::byte*>(raw.data()), m.chunks, zero, extent,
            item);
    const std::string key = param + "/" + m.ChunkKey(index);
    if (!stored_already(key, raw)) put(key, EncodeChunk(m, raw));
  });
}

void WriteZarrArray(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& m, const Array& data) {
  if (data.dtype() != m.dtype || data.shape() != m.shape) {
    throw InvalidArgumentError("parameter " + param + ": array " + std::string(DTypeName(data.dtype())) +
                               ShapeToString(data.shape()) + " does not match its zarr metadata " +
                               std::string(DTypeName(m.dtype)) + ShapeToString(m.shape));
  }
  WriteZarrMetadata(store, param, m);
  WriteZarrChunks(store, param, m, data, Shape(m.shape.size(), 0));
}

uint64_t MaxStoredChunkBytes(const ZarrMetadata& m) {
  const uint64_t chunk_bytes = NumBytes(m.dtype, m.chunks);
  // A zarr3 shard adds its index (16 bytes per inner chunk, one here) and the index's CRC-32C.
  constexpr uint64_t kShardOverhead = 64;
  return (m.zstd_level ? ZstdMaxFrameBytes(chunk_bytes) : m.blosc ? BloscMaxBytes(chunk_bytes) : chunk_bytes) +
         kShardOverhead;
}

ZarrMetadata ReadZarrMetadata(kvstore::KvStore& store, const std::string& param) {
  if (auto v2 = store.Read(param + "/.zarray", kMaxMetadataFileBytes)) {
    return DecodeZarrV2Metadata(*v2, "zarr metadata " + param + "/.zarray in " + store.Describe());
  }
  if (auto v3 = store.Read(param + "/zarr.json", kMaxMetadataFileBytes)) {
    return DecodeZarr3Metadata(*v3, "zarr metadata " + param + "/zarr.json in " + store.Describe());
  }
  throw NotFoundError("parameter " + param + " has no zarr metadata (" + param + "/.zarray or " + param +
                      "/zarr.json) in " + store.Describe());
}

// A zstd chunk larger than this, in a store of local files, is read and decoded kZstdPieceBytes at a time
// (StreamZstdChunkInto).
constexpr size_t kStreamZstdChunksAboveBytes = size_t{16} << 20;
constexpr size_t kZstdPieceBytes = size_t{4} << 20;  // a multiple of the 64 KiB checksum block

// A zstd chunk (zarr v2, or zarr3 unsharded) decoded into `dst` piece by piece as it is read: a restore holds one
// piece of the stored chunk besides its destination (not all of it: a 200 MiB embedding's moments stored raw would
// otherwise double for a moment), and decodes each piece while it is in cache. Each ranged read is checked as any
// (ChecksummedKvStore checks the 64 KiB blocks it covers).
static void StreamZstdChunkInto(kvstore::KvStore& store, const std::string& key, const ZarrMetadata& m, char* dst,
                                size_t chunk_bytes, const std::string& what) {
  const std::optional<uint64_t> size = store.ValueSize(key);
  if (!size) throw CorruptionError(what + " is missing");
  if (*size > MaxStoredChunkBytes(m)) {
    throw CorruptionError(what + ": holds " + std::to_string(*size) + " bytes, more than a zstd frame of its " +
                          std::to_string(chunk_bytes) + " bytes can take [" + store.DescribeKey(key) + "]");
  }
  ZstdDecoderInto decoder(dst, chunk_bytes, what);
  // The decoder's errors get the file holding the chunk added (as DecodeNamingFile does); the store's name it.
  auto decode = [&](auto&& step) {
    try {
      step();
    } catch (const CorruptionError& e) {
      throw CorruptionError(std::string(e.what()) + " [" + store.DescribeKey(key) + "]");
    }
  };
  for (uint64_t at = 0; at < *size;) {
    std::optional<std::string> piece;
    try {
      piece = store.ReadRange(key, at, std::min<uint64_t>(kZstdPieceBytes, *size - at));
    } catch (const InvalidArgumentError&) {  // the range is past the end: the file shrank since ValueSize
      throw CorruptionError(what + ": the stored chunk changed size while it was read [" + store.DescribeKey(key) +
                            "]");
    }
    if (!piece || piece->empty()) throw CorruptionError(what + " is missing");
    decode([&] { decoder.Feed(*piece); });
    at += piece->size();
  }
  decode([&] { decoder.Finish(); });
}

// Chunk `key`, read whole into `dst` (`chunk_bytes`): an uncompressed v2 chunk straight from the store, any other
// decoded there (a zarr3 shard's missing chunk as zeros).
static void ReadWholeChunkInto(kvstore::KvStore& store, const std::string& key, const ZarrMetadata& m, char* dst,
                               size_t chunk_bytes, const std::string& what) {
  if (m.format == ZarrFormat::kV2 && !m.compressed()) {
    if (!store.ReadInto(key, dst, chunk_bytes)) throw CorruptionError(what + " is missing");
    return;
  }
  if (m.zstd_level && (m.format == ZarrFormat::kV2 || !m.zarr3_sharded) && chunk_bytes > kStreamZstdChunksAboveBytes &&
      store.ReadsInPieces(key)) {
    StreamZstdChunkInto(store, key, m, dst, chunk_bytes, what);
    return;
  }
  auto stored = store.Read(key, MaxStoredChunkBytes(m));
  if (!stored) throw CorruptionError(what + " is missing");
  if (!DecodeNamingFile(store, key, m, *stored, dst, chunk_bytes, what)) std::memset(dst, 0, chunk_bytes);
}

static void ReadRegionInto(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& m,
                           const Shape& origin, const Shape& shape, Array& out, bool chunks_checked);

// The chunks a region of the array overlaps: [lo[d], hi[d]) in each dimension, and whether the stored domain
// covers the whole region (no padding to zero). Nullopt when no stored element is in the region (all padding),
// or the chunk shape has a zero dimension (which parsing the metadata refuses).
struct OverlappedChunks {
  std::vector<int64_t> lo, hi;
  bool covers_region = true;
};
static std::optional<OverlappedChunks> ChunksOverlapping(const ZarrMetadata& m, const Shape& origin,
                                                         const Shape& shape) {
  const size_t rank = m.shape.size();
  OverlappedChunks c{std::vector<int64_t>(rank), std::vector<int64_t>(rank)};
  for (size_t d = 0; d < rank; ++d) {
    const int64_t begin = std::max<int64_t>(origin[d], 0);
    const int64_t end = std::min(origin[d] + shape[d], m.shape[d]);
    if (end <= begin || m.chunks[d] <= 0) return std::nullopt;
    c.covers_region = c.covers_region && begin == origin[d] && end == origin[d] + shape[d];
    c.lo[d] = begin / m.chunks[d];
    c.hi[d] = (end - 1) / m.chunks[d] + 1;
  }
  return c;
}

Array ReadZarrRegion(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& m, const Shape& origin,
                     const Shape& shape, DType out_dtype) {
  // The shape comes from metadata on disk (or a target built from it): before allocating, it must at least fit
  // this machine, so that a lying .zarray gets a clear error instead of an attempt at terabytes.
  CheckFitsInMemory(NumBytes(out_dtype, shape), "parameter " + param + " (shape " + ShapeToString(shape) + ")");
  // A large region's chunks are looked up before its array is allocated, not only before it is written: a
  // .zarray claiming a gigabyte over one stored chunk then costs nothing, not even the address space and the
  // allocator's bookkeeping for it (AddressSanitizer's shadow of a 1 GiB allocation is 128 MiB of memory).
  bool chunks_checked = false;
  const size_t rank = m.shape.size();
  if (origin.size() == rank && shape.size() == rank && NumBytes(out_dtype, shape) >= kCheckChunksAboveBytes) {
    if (auto chunks = ChunksOverlapping(m, origin, shape)) {
      RequireChunksPresent(store, param, m, chunks->lo, chunks->hi);
      chunks_checked = true;
    }
  }
  Array out = Array::Allocate(out_dtype, shape);
  ReadRegionInto(store, param, m, origin, shape, out, chunks_checked);
  return out;
}

// ReadZarrRegionInto, told whether the caller has already made sure that the chunks of a large region exist.
static void ReadRegionInto(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& m,
                           const Shape& origin, const Shape& shape, Array& out, bool chunks_checked) {
  const size_t rank = m.shape.size();
  if (origin.size() != rank || shape.size() != rank) {
    throw InvalidArgumentError("parameter " + param + ": requested a rank-" + std::to_string(shape.size()) +
                               " region of a rank-" + std::to_string(rank) + " array");
  }
  if (out.shape() != shape) {
    throw InvalidArgumentError("parameter " + param + ": the destination array has shape " +
                               ShapeToString(out.shape()) + " but the region read is " + ShapeToString(shape));
  }
  if (!out.writable()) {
    throw InvalidArgumentError("parameter " + param + ": the destination array is not writable (an array cairn "
                               "owns, or one made by Array::FromBorrowedWritable, is)");
  }
  const DType out_dtype = out.dtype();
  const size_t item = ItemSize(m.dtype);
  const size_t chunk_bytes = NumBytes(m.dtype, m.chunks);
  const bool cast = out_dtype != m.dtype;
  CheckFitsInMemory(chunk_bytes, "a chunk of parameter " + param + " (chunk shape " + ShapeToString(m.chunks) + ")");
  std::byte* const out_bytes = out.mutable_bytes().data();
  // The common cases: the request is exactly one chunk (the whole array stored as one chunk, or a box of the
  // sharding it was saved with), not cut by the array's edge, in the stored dtype. Decode (or, uncompressed,
  // read) straight into the destination: no intermediate buffer, no zero fill.
  bool one_chunk = !cast && shape == m.chunks;
  std::vector<int64_t> chunk_index(rank);
  for (size_t d = 0; one_chunk && d < rank; ++d) {
    one_chunk = origin[d] >= 0 && origin[d] % m.chunks[d] == 0 && origin[d] + shape[d] <= m.shape[d];
    chunk_index[d] = one_chunk ? origin[d] / m.chunks[d] : 0;
  }
  if (one_chunk) {
    char* dst = reinterpret_cast<char*>(out_bytes);
    const std::string key = param + "/" + m.ChunkKey(chunk_index);
    const std::string what = "chunk " + key + " in " + store.Describe();
    ReadWholeChunkInto(store, key, m, dst, chunk_bytes, what);
    return;
  }
  // The part of the request inside the stored domain, and the chunks it overlaps.
  const std::optional<OverlappedChunks> chunks = ChunksOverlapping(m, origin, shape);
  if (!chunks) {  // all padding
    if (out.num_bytes()) std::memset(out_bytes, 0, out.num_bytes());
    return;
  }
  const std::vector<int64_t>& lo = chunks->lo;
  const std::vector<int64_t>& hi = chunks->hi;
  const bool inside = chunks->covers_region;  // the chunks cover every element of `out`: no zero fill
  if (!chunks_checked && NumBytes(out_dtype, shape) >= kCheckChunksAboveBytes) {
    RequireChunksPresent(store, param, m, lo, hi);
  }
  if (!inside) std::memset(out_bytes, 0, out.num_bytes());  // strict=false padding beyond the stored edge
  // Reads (and decodes) one chunk into its place in `out`, using `chunk` and `converted` as scratch.
  auto read_chunk = [&](const std::vector<int64_t>& index, std::string& chunk, std::string& converted) {
    const std::string key = param + "/" + m.ChunkKey(index);
    const std::string what = "chunk " + key + " in " + store.Describe();
    std::vector<int64_t> src_origin(rank), dst_origin(rank), extent(rank);
    bool whole_chunk = true;
    for (size_t d = 0; d < rank; ++d) {
      int64_t chunk_begin = index[d] * m.chunks[d];
      int64_t begin = std::max({chunk_begin, origin[d], int64_t{0}});
      int64_t end = std::min({chunk_begin + m.chunks[d], origin[d] + shape[d], m.shape[d]});
      src_origin[d] = begin - chunk_begin;
      dst_origin[d] = begin - origin[d];
      extent[d] = end - begin;
      whole_chunk = whole_chunk && extent[d] == m.chunks[d];
    }
    // A whole chunk whose box in `out` is one contiguous run (the chunk spans every dimension of `out` but the
    // first: an array chunked along its first axis) lands straight in `out`, as in the one-chunk case.
    bool contiguous = whole_chunk && !cast;
    for (size_t d = 1; contiguous && d < rank; ++d) contiguous = m.chunks[d] == shape[d];
    if (contiguous) {
      uint64_t first = 0;
      for (size_t d = 0; d < rank; ++d) first = first * static_cast<uint64_t>(shape[d]) + dst_origin[d];
      char* dst = reinterpret_cast<char*>(out_bytes) + first * item;
      ReadWholeChunkInto(store, key, m, dst, chunk_bytes, what);
      return;
    }
    if (!whole_chunk && m.format == ZarrFormat::kV2 && !m.compressed()) {
      // Uncompressed: read only the span of the chunk from the box's first to its last element (for a box that
      // cuts the chunk along its first dimension, exactly the bytes needed). The rest of `chunk` is not used.
      uint64_t first = 0, last = 0;
      for (size_t d = 0; d < rank; ++d) {
        first = first * static_cast<uint64_t>(m.chunks[d]) + static_cast<uint64_t>(src_origin[d]);
        last = last * static_cast<uint64_t>(m.chunks[d]) + static_cast<uint64_t>(src_origin[d] + extent[d] - 1);
      }
      const uint64_t offset = first * item, length = (last - first + 1) * item;
      std::optional<std::string> span;
      try {
        span = store.ReadRange(key, offset, length);
      } catch (const InvalidArgumentError&) {
        throw CorruptionError(what + " is shorter than the " + std::to_string(chunk_bytes) + " bytes it must hold");
      }
      if (!span) throw CorruptionError(what + " is missing");
      std::memcpy(chunk.data() + offset, span->data(), span->size());
    } else {
      auto stored = store.Read(key, MaxStoredChunkBytes(m));
      if (!stored) throw CorruptionError(what + " is missing");
      // An empty shard reads as the fill value, zero.
      if (!DecodeNamingFile(store, key, m, *stored, chunk.data(), chunk_bytes, what)) {
        std::memset(chunk.data(), 0, chunk_bytes);
      }
    }
    const char* src = chunk.data();
    if (cast) {
      converted.resize(NumBytes(out_dtype, m.chunks));
      CastElements(chunk.data(), m.dtype, converted.data(), out_dtype, static_cast<size_t>(NumElements(m.chunks)));
      src = converted.data();
    }
    CopyBox(reinterpret_cast<const std::byte*>(src), m.chunks, src_origin, out_bytes, shape, dst_origin, extent,
            cast ? ItemSize(out_dtype) : item);
  };
  // The chunks are read and decoded on every core (decompression is the cost of a compressed restore); each writes
  // its own box of `out`. Each worker holds one chunk's scratch at a time, so chunks above kParallelChunkBytes are
  // read one after the other, to bound the memory a restore adds.
  constexpr uint64_t kParallelChunkBytes = uint64_t{64} << 20;
  std::vector<int64_t> grid(rank);
  uint64_t count = 1;
  for (size_t d = 0; d < rank; ++d) {
    grid[d] = hi[d] - lo[d];
    count *= static_cast<uint64_t>(grid[d]);  // no overflow: `out` (at least one element per chunk) fits in memory
  }
  auto index_of = [&](uint64_t linear) {  // C order, as ForEachChunk
    std::vector<int64_t> index(rank);
    for (size_t d = rank; d-- > 0;) {
      index[d] = lo[d] + static_cast<int64_t>(linear % static_cast<uint64_t>(grid[d]));
      linear /= static_cast<uint64_t>(grid[d]);
    }
    return index;
  };
  if (count <= 1 || chunk_bytes > kParallelChunkBytes) {
    std::string chunk(chunk_bytes, '\0'), converted;
    for (uint64_t i = 0; i < count; ++i) read_chunk(index_of(i), chunk, converted);
    return;
  }
  struct Scratch {
    std::string chunk, converted;
  };
  std::mutex scratch_mu;
  std::vector<std::unique_ptr<Scratch>> free_scratch;
  ParallelFor(static_cast<size_t>(count), [&](size_t i) {
    std::unique_ptr<Scratch> scratch;
    {
      std::lock_guard lock(scratch_mu);
      if (!free_scratch.empty()) {
        scratch = std::move(free_scratch.back());
        free_scratch.pop_back();
      }
    }
    if (!scratch) {
      scratch = std::make_unique<Scratch>();
      scratch->chunk.resize(chunk_bytes);
    }
    read_chunk(index_of(i), scratch->chunk, scratch->converted);
    std::lock_guard lock(scratch_mu);
    free_scratch.push_back(std::move(scratch));
  });
}

void ReadZarrRegionInto(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& m,
                        const Shape& origin, const Shape& shape, Array& out) {
  ReadRegionInto(store, param, m, origin, shape, out, /*chunks_checked=*/false);
}

std::optional<Array> MapZarrRegion(kvstore::KvStore& store, const std::string& param, const ZarrMetadata& m,
                                   const Shape& origin, const Shape& shape, DType out_dtype, kvstore::MapCheck check) {
  const bool raw = !m.compressed() && (m.format == ZarrFormat::kV2 || !m.zarr3_sharded);
  const bool at_zero = origin.size() == m.shape.size() &&
                       std::all_of(origin.begin(), origin.end(), [](int64_t o) { return o == 0; });
  if (!raw || out_dtype != m.dtype || shape != m.shape || m.chunks != m.shape || !at_zero) {
    return std::nullopt;
  }
  const size_t bytes = NumBytes(m.dtype, m.shape);
  if (bytes == 0) return std::nullopt;
  const std::string key = param + "/" + m.ChunkKey(std::vector<int64_t>(m.shape.size(), 0));
  std::shared_ptr<const std::byte> mapping = store.MapValue(key, bytes, check);
  if (!mapping || reinterpret_cast<uintptr_t>(mapping.get()) % ItemSize(m.dtype) != 0) return std::nullopt;
  return Array::FromShared(std::shared_ptr<const void>(mapping, mapping.get()), m.dtype, m.shape);
}

uint64_t NumChunks(const ZarrMetadata& m, const std::string& what) {
  if (m.chunks.size() != m.shape.size()) throw CorruptionError(what + ": the chunk shape's rank is not the array's");
  uint64_t count = 1;
  for (size_t d = 0; d < m.shape.size(); ++d) {
    if (m.chunks[d] <= 0 || m.shape[d] < 0) throw CorruptionError(what + ": a chunk or array dimension is not positive");
    const uint64_t n = static_cast<uint64_t>((m.shape[d] + m.chunks[d] - 1) / m.chunks[d]);
    if (__builtin_mul_overflow(count, n, &count)) throw CorruptionError(what + ": the number of chunks overflows");
  }
  return count;
}

void ForEachChunkKey(const ZarrMetadata& m, const std::function<void(const std::string& key)>& fn) {
  ForEachChunkKeyInBox(m, Shape(m.shape.size(), 0), m.shape, fn);
}

void ForEachChunkKeyInBox(const ZarrMetadata& m, const Shape& origin, const Shape& shape,
                          const std::function<void(const std::string& key)>& fn) {
  const size_t rank = m.shape.size();
  std::vector<int64_t> lo(rank), hi(rank);
  for (size_t d = 0; d < rank; ++d) {
    lo[d] = origin[d] / m.chunks[d];
    hi[d] = (origin[d] + shape[d] + m.chunks[d] - 1) / m.chunks[d];
  }
  ForEachChunk(lo, hi, [&](const std::vector<int64_t>& index) { fn(m.ChunkKey(index)); });
}

bool DecodeZarrChunk(const ZarrMetadata& m, std::string_view stored, const std::string& what) {
  std::string out(NumBytes(m.dtype, m.chunks), '\0');
  return DecodeChunk(m, stored, out.data(), out.size(), what);
}

}  // namespace cairn::zarr
