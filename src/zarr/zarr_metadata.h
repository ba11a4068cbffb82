// The metadata of one zarr array: `.zarray` (zarr v2) or `zarr.json` (zarr3), as TensorStore writes them for
// Orbax.
#pragma once

#include <optional>
#include <string>

#include "cairn/array.h"

namespace cairn::zarr {

enum class ZarrFormat { kV2 = 2, kV3 = 3 };

struct ZarrMetadata {
  ZarrFormat format = ZarrFormat::kV2;
  DType dtype = DType::kFloat32;
  Shape shape;
  Shape chunks;                       // for zarr3 with sharding: the shard shape (= the single inner chunk)
  std::optional<int> zstd_level;      // nullopt: uncompressed
  char dimension_separator = '.';     // zarr v2 chunk keys: "0.1" or "0/1"
  bool zarr3_sharded = true;          // zarr3: chunks are `sharding_indexed` shards (what Orbax writes)
  bool zarr3_default_keys = true;     // zarr3: "c/0/1" (default) or "0.1" (v2 encoding)
  char zarr3_separator = '/';

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
