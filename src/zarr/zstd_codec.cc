#include "zarr/zstd_codec.h"

#include <zstd.h>

#include <memory>

#include "cairn/error.h"

namespace cairn::zarr {

size_t ZstdMaxFrameBytes(size_t content_bytes) { return ZSTD_compressBound(content_bytes) + 64; }

std::string ZstdCompress(std::string_view data, int level) {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> context(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!context) throw std::bad_alloc();
  // The frame records its content size and a checksum of the content, which every zstd decoder verifies: a
  // flipped byte in a stored chunk is then reported, not silently decoded into wrong values.
  ZSTD_CCtx_setParameter(context.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(context.get(), ZSTD_c_checksumFlag, 1);
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress2(context.get(), out.data(), out.size(), data.data(), data.size());
  if (ZSTD_isError(n)) throw InvalidArgumentError(std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

void ZstdDecompressInto(std::string_view frame, char* out, size_t expected_size, const std::string& what) {
  std::unique_ptr<ZSTD_DStream, decltype(&ZSTD_freeDStream)> stream(ZSTD_createDStream(), ZSTD_freeDStream);
  if (!stream) throw std::bad_alloc();
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  ZSTD_outBuffer output{out, expected_size, 0};
  // A spare byte lets us notice a frame that decodes to more than the chunk should hold.
  char overflow;
  size_t rc = 1;  // nonzero: a frame is still open
  while (in.pos < in.size) {
    rc = ZSTD_decompressStream(stream.get(), &output, &in);
    if (ZSTD_isError(rc)) {
      throw CorruptionError(what + ": zstd data does not decode (" + ZSTD_getErrorName(rc) + ")");
    }
    if (output.pos == output.size && rc != 0) {
      // The output is full but the frame goes on: it must produce nothing more (only its epilogue, such as
      // the checksum, may remain).
      ZSTD_outBuffer extra{&overflow, 1, 0};
      rc = ZSTD_decompressStream(stream.get(), &extra, &in);
      if (ZSTD_isError(rc)) {
        throw CorruptionError(what + ": zstd data does not decode (" + ZSTD_getErrorName(rc) + ")");
      }
      if (extra.pos > 0) {
        throw CorruptionError(what + ": zstd data decodes to more than the expected " + std::to_string(expected_size) +
                              " bytes");
      }
    }
    if (in.pos == in.size) break;
  }
  if (rc != 0) throw CorruptionError(what + ": zstd data is truncated");
  if (output.pos != expected_size) {
    throw CorruptionError(what + ": zstd data decodes to " + std::to_string(output.pos) + " bytes, expected " +
                          std::to_string(expected_size));
  }
}

}  // namespace cairn::zarr
