// Copies an N-dimensional box between two C-order buffers: the one primitive behind chunking, assembling,
// padding and truncating arrays.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cairn {

// Copies the box of `extent` starting at `src_origin` in `src` (of `src_shape`) to `dst_origin` in `dst` (of
// `dst_shape`). All vectors have the same rank; the caller guarantees both boxes lie inside their buffers.
void CopyBox(const std::byte* src, const std::vector<int64_t>& src_shape, const std::vector<int64_t>& src_origin,
             std::byte* dst, const std::vector<int64_t>& dst_shape, const std::vector<int64_t>& dst_origin,
             const std::vector<int64_t>& extent, size_t item_size);

}  // namespace cairn
