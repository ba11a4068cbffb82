// Orbax's choice of chunk shape (`arrays/subchunking.choose_chunk_shape`).
#pragma once

#include <cstdint>
#include <optional>

#include "cairn/array.h"

namespace cairn::zarr {

// Starts from `write_shape` (the local shard) and, while the chunk is larger than `target_byte_size`, replaces
// the largest dimension with its next smaller divisor: dimensions that are sharded (differ from `global_shape`)
// first, then the others. Without a target the chunk is the write shape. Zero-size dimensions become 1.
Shape ChooseChunkShape(const Shape& global_shape, const Shape& write_shape, DType dtype,
                       std::optional<int64_t> target_byte_size);

}  // namespace cairn::zarr
