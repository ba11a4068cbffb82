// zstd as zarr uses it: one frame per chunk. Decoding streams, because TensorStore's zarr v2 frames carry no
// content size (tensorstore#182), and checks the decoded size against what the chunk must hold.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cairn::zarr {

// The most a frame of `content_bytes` bytes can take, as any zstd encoder writes it (zstd's worst-case bound, plus
// room for a content checksum): a stored chunk longer than this is not one.
size_t ZstdMaxFrameBytes(size_t content_bytes);

// One frame with its content size and a content checksum.
std::string ZstdCompress(std::string_view data, int level);
// Decodes one or more concatenated frames into exactly `expected_size` bytes at `out`. Anything else (bad
// frame, too few or too many bytes) is a CorruptionError mentioning `what`.
void ZstdDecompressInto(std::string_view frame, char* out, size_t expected_size, const std::string& what);

}  // namespace cairn::zarr
