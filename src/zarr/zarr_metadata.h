// The metadata of one zarr array: `.zarray` (zarr v2) or `zarr.json` (zarr3), as TensorStore writes them for
// Orbax.
#pragma once

#include <optional>
#include <string>

#include "cairn/array.h"

namespace cairn::zarr {

enum class ZarrFormat { kV2 = 2, kV3 = 3 };

// The blosc compressor as TensorStore configures it (zarr v2 `compressor` {"id": "blosc"}, zarr3 codec "blosc").
struct BloscConfig {
  std::string cname = "lz4";  // blosc's compressor: lz4, lz4hc, blosclz, zstd, zlib
  int clevel = 5;
  // zarr v2 (numcodecs): -1 auto (bit shuffle for 1-byte items, else byte shuffle), 0 none, 1 byte, 2 bit.
  // zarr3: "noshuffle", "shuffle", "bitshuffle" are 0, 1, 2.
  int shuffle = 1;
  int typesize = 0;   // zarr3's "typesize"; 0: the dtype's item size (zarr v2 has no such field)
  int blocksize = 0;  // 0: blosc chooses
  bool operator==(const BloscConfig&) const = default;
};

struct ZarrMetadata {
  ZarrFormat format = ZarrFormat::kV2;
  DType dtype = DType::kFloat32;
  Shape shape;
  Shape chunks;                       // for zarr3 with sharding: the shard shape (= the single inner chunk)
  std::optional<int> zstd_level;      // nullopt: not zstd
  std::optional<BloscConfig> blosc;   // nullopt: not blosc (at most one of zstd_level and blosc is set)
  char dimension_separator = '.';     // zarr v2 chunk keys: "0.1" or "0/1"
  bool zarr3_sharded = true;          // zarr3: chunks are `sharding_indexed` shards (what Orbax writes)
  bool zarr3_default_keys = true;     // zarr3: "c/0/1" (default) or "0.1" (v2 encoding)
  char zarr3_separator = '/';

  bool compressed() const { return zstd_level.has_value() || blosc.has_value(); }
  // "zstd(1)", "blosc(lz4, 5, shuffle)", "none": for `cairn info` and messages.
  std::string CompressionName() const;
  // The metadata file's key relative to the array ("`.zarray`" or "`zarr.json`").
  const char* MetadataKey() const { return format == ZarrFormat::kV2 ? ".zarray" : "zarr.json"; }
  // The key of the chunk at `grid_index` relative to the array ("0.1", "c/0/1").
  std::string ChunkKey(const std::vector<int64_t>& grid_index) const;
};

// Exact bytes as TensorStore writes them (sorted keys, compact), so cairn's files equal Orbax's.
std::string EncodeZarrMetadata(const ZarrMetadata& metadata);
// Parses `.zarray` or `zarr.json`; anything malformed or unsupported (filters, Fortran order, other
// compressors or codecs) is a CorruptionError or UnimplementedError naming `what`.
ZarrMetadata DecodeZarrV2Metadata(std::string_view json, const std::string& what);
ZarrMetadata DecodeZarr3Metadata(std::string_view json, const std::string& what);

}  // namespace cairn::zarr
