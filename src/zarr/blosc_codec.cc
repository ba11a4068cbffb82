#include "zarr/blosc_codec.h"

#include <blosc.h>

#include "cairn/error.h"

namespace cairn::zarr {

bool BloscKnowsCompressor(const std::string& cname) {
  // Validated here once: the name reaches blosc from metadata on disk.
  return blosc_compname_to_compcode(cname.c_str()) >= 0;
}

size_t BloscMaxBytes(size_t content_bytes) { return content_bytes + BLOSC_MAX_OVERHEAD; }

std::string BloscCompress(std::string_view data, const BloscConfig& config, size_t item_size) {
  if (data.size() > static_cast<size_t>(BLOSC_MAX_BUFFERSIZE)) {
    throw InvalidArgumentError("a chunk of " + std::to_string(data.size()) +
                               " bytes is too large for blosc (at most 2 GiB); use zstd or smaller chunks");
  }
  if (!BloscKnowsCompressor(config.cname)) {
    throw InvalidArgumentError("blosc has no compressor \"" + config.cname + "\"");
  }
  const size_t typesize = config.typesize > 0 ? static_cast<size_t>(config.typesize) : item_size;
  // numcodecs' AUTOSHUFFLE: bit shuffle for one-byte items (byte shuffle would do nothing), byte shuffle otherwise.
  int shuffle = config.shuffle;
  if (shuffle < 0) shuffle = typesize == 1 ? BLOSC_BITSHUFFLE : BLOSC_SHUFFLE;
  std::string out(BloscMaxBytes(data.size()), '\0');
  // The _ctx calls keep no global state, so chunks compress on many threads at once; one thread each, as the
  // callers already spread chunks over the cores.
  const int n = blosc_compress_ctx(config.clevel, shuffle, typesize, data.size(), data.data(), out.data(), out.size(),
                                   config.cname.c_str(), static_cast<size_t>(config.blocksize), 1);
  if (n <= 0) throw InvalidArgumentError("blosc compression failed (" + std::to_string(n) + ")");
  out.resize(static_cast<size_t>(n));
  return out;
}

void BloscDecompressInto(std::string_view stored, char* out, size_t expected_size, const std::string& what) {
  size_t nbytes = 0;
  // blosc_decompress_ctx takes no input size: the header's sizes are checked against the bytes read first.
  if (stored.size() < BLOSC_MIN_HEADER_LENGTH || blosc_cbuffer_validate(stored.data(), stored.size(), &nbytes) < 0) {
    throw CorruptionError(what + ": blosc data has no valid header");
  }
  if (nbytes != expected_size) {
    throw CorruptionError(what + ": blosc data decodes to " + std::to_string(nbytes) + " bytes, expected " +
                          std::to_string(expected_size));
  }
  const int n = blosc_decompress_ctx(stored.data(), out, expected_size, 1);
  if (n < 0 || static_cast<size_t>(n) != expected_size) {
    throw CorruptionError(what + ": blosc data does not decode (" + std::to_string(n) + ")");
  }
}

}  // namespace cairn::zarr
