#include "core/box_copy.h"

#include <cstring>

namespace cairn {

void CopyBox(const std::byte* src, const std::vector<int64_t>& src_shape, const std::vector<int64_t>& src_origin,
             std::byte* dst, const std::vector<int64_t>& dst_shape, const std::vector<int64_t>& dst_origin,
             const std::vector<int64_t>& extent, size_t item_size) {
  const size_t rank = extent.size();
  for (int64_t e : extent) {
    if (e <= 0) return;
  }
  if (rank == 0) {
    std::memcpy(dst, src, item_size);
    return;
  }
  // Strides in bytes; the innermost dimension is copied with one memcpy per row.
  std::vector<size_t> src_stride(rank), dst_stride(rank);
  src_stride[rank - 1] = dst_stride[rank - 1] = item_size;
  for (size_t d = rank - 1; d > 0; --d) {
    src_stride[d - 1] = src_stride[d] * static_cast<size_t>(src_shape[d]);
    dst_stride[d - 1] = dst_stride[d] * static_cast<size_t>(dst_shape[d]);
  }
  const size_t row_bytes = static_cast<size_t>(extent[rank - 1]) * item_size;
  std::vector<int64_t> index(rank, 0);  // position inside the box, outer dimensions only
  while (true) {
    size_t src_offset = 0, dst_offset = 0;
    for (size_t d = 0; d < rank; ++d) {
      src_offset += static_cast<size_t>(src_origin[d] + index[d]) * src_stride[d];
      dst_offset += static_cast<size_t>(dst_origin[d] + index[d]) * dst_stride[d];
    }
    std::memcpy(dst + dst_offset, src + src_offset, row_bytes);
    // Advance the outer dimensions like an odometer.
    size_t d = rank - 1;
    while (d > 0) {
      --d;
      if (++index[d] < extent[d]) break;
      index[d] = 0;
      if (d == 0) return;
    }
    if (rank == 1) return;
  }
}

}  // namespace cairn
