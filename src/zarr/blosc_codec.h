// blosc as zarr uses it (numcodecs / TensorStore): one blosc buffer per chunk, through Debian's c-blosc 1.x.
// Shuffle reorders the bytes of each item by significance before compressing, which is what makes floats
// compress (their exponent bytes repeat, their low mantissa bytes do not).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "zarr/zarr_metadata.h"

namespace cairn::zarr {

// Whether the blosc library has the compressor `cname` (lz4, zstd, ...).
bool BloscKnowsCompressor(const std::string& cname);

// The most a blosc buffer of `content_bytes` bytes takes (blosc's bound: the content plus its header).
size_t BloscMaxBytes(size_t content_bytes);

// One blosc buffer of `data`, items of `item_size` bytes. InvalidArgumentError for a chunk blosc cannot hold
// (2 GiB or more) or a compressor it does not have.
std::string BloscCompress(std::string_view data, const BloscConfig& config, size_t item_size);

// Decodes one blosc buffer into exactly `expected_size` bytes at `out`, after checking its header against the
// bytes given (blosc's decoder trusts the header). Anything else is a CorruptionError mentioning `what`.
void BloscDecompressInto(std::string_view stored, char* out, size_t expected_size, const std::string& what);

}  // namespace cairn::zarr
