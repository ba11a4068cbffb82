#include "kvstore/ocdbt/envelope.h"

#include <zstd.h>

#include <cstdio>
#include <memory>

#include "cairn/error.h"
#include "core/crc32c.h"
#include "kvstore/ocdbt/codec.h"

namespace cairn::kvstore::ocdbt {
namespace {

constexpr uint64_t kFormatVersion = 0;
constexpr size_t kHeaderBytes = 4 + 8;  // magic + length
constexpr size_t kCrcBytes = 4;

std::string Hex32(uint32_t value) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", value);
  return buf;
}

std::string ZstdCompress(std::string_view body, int level, const char* what) {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> ctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!ctx) throw std::bad_alloc();
  ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_compressionLevel, level);
  std::string out(ZSTD_compressBound(body.size()), '\0');
  // One-shot compression records the content size in the frame header, as TensorStore's frames do.
  size_t n = ZSTD_compress2(ctx.get(), out.data(), out.size(), body.data(), body.size());
  if (ZSTD_isError(n)) {
    throw InvalidArgumentError(std::string("zstd compression of ") + what + " failed: " + ZSTD_getErrorName(n));
  }
  out.resize(n);
  return out;
}

// Streaming decompression: the format does not promise a content size in the frame, so none is trusted; the
// output grows as the stream produces bytes and may never pass `max_bytes`.
std::string ZstdDecompress(std::string_view input, size_t max_bytes, const std::string& context) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!ctx) throw std::bad_alloc();
  std::string out;
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  size_t last = 1;  // non-zero: no frame completed yet
  const size_t chunk = ZSTD_DStreamOutSize();
  while (true) {
    size_t old_size = out.size();
    if (old_size >= max_bytes + 1) {
      throw CorruptionError(context + ": zstd body decodes to more than " + std::to_string(max_bytes) + " bytes");
    }
    // Ask for at most one byte past the cap, so an oversized stream is detected without decoding it all.
    size_t grow = std::min(chunk, max_bytes + 1 - old_size);
    out.resize(old_size + grow);
    ZSTD_outBuffer ob{out.data() + old_size, grow, 0};
    size_t in_before = in.pos;
    last = ZSTD_decompressStream(ctx.get(), &ob, &in);
    out.resize(old_size + ob.pos);
    if (ZSTD_isError(last)) {
      throw CorruptionError(context + ": invalid zstd body: " + ZSTD_getErrorName(last));
    }
    if (out.size() > max_bytes) {
      throw CorruptionError(context + ": zstd body decodes to more than " + std::to_string(max_bytes) + " bytes");
    }
    // All input consumed and output room left over: the decoder has flushed everything it holds.
    if (in.pos == in.size && ob.pos < grow) break;
    if (ob.pos == 0 && in.pos == in_before) throw CorruptionError(context + ": zstd body makes no progress");
  }
  if (last != 0) throw CorruptionError(context + ": truncated zstd body");
  return out;
}

}  // namespace

std::string EncodeEnvelope(uint32_t magic, std::string_view body, const Compression& compression) {
  std::string payload;  // version, compression and body: everything between the fixed header and the CRC
  AppendVarint(payload, kFormatVersion);
  AppendVarint(payload, compression.zstd ? 1 : 0);
  if (compression.zstd) {
    payload += ZstdCompress(body, compression.zstd_level, "OCDBT object");
  } else {
    payload.append(body);
  }
  std::string out;
  out.reserve(kHeaderBytes + payload.size() + kCrcBytes);
  AppendU32BE(out, magic);
  AppendU64LE(out, kHeaderBytes + payload.size() + kCrcBytes);
  out += payload;
  AppendU32LE(out, Crc32c(out));
  return out;
}

std::string DecodeEnvelope(std::string_view encoded, uint32_t magic, size_t max_decoded_bytes,
                           const std::string& context) {
  if (encoded.size() < kHeaderBytes + 2 + kCrcBytes) {
    throw CorruptionError(context + ": " + std::to_string(encoded.size()) +
                          " bytes is shorter than the smallest possible OCDBT object");
  }
  ByteReader reader(encoded.substr(0, encoded.size() - kCrcBytes), context);
  uint32_t actual_magic = reader.ReadU32BE("magic");
  if (actual_magic != magic) {
    throw CorruptionError(context + ": bad magic " + Hex32(actual_magic) + ", expected " + Hex32(magic));
  }
  uint64_t length = reader.ReadU64LE("length");
  if (length != encoded.size()) {
    throw CorruptionError(context + ": header says " + std::to_string(length) + " bytes but the object has " +
                          std::to_string(encoded.size()));
  }
  // Check the CRC before interpreting anything else: a damaged object must not reach the decompressor or parser.
  ByteReader crc_reader(encoded.substr(encoded.size() - kCrcBytes), context);
  uint32_t stored_crc = crc_reader.ReadU32LE("crc32c");
  uint32_t actual_crc = Crc32c(encoded.substr(0, encoded.size() - kCrcBytes));
  if (stored_crc != actual_crc) {
    throw CorruptionError(context + ": CRC-32C mismatch (stored " + Hex32(stored_crc) + ", computed " +
                          Hex32(actual_crc) + ")");
  }
  uint64_t version = reader.ReadVarint("format version");
  if (version != kFormatVersion) {
    throw CorruptionError(context + ": unsupported format version " + std::to_string(version));
  }
  uint64_t compression = reader.ReadVarint("compression format");
  std::string_view body = reader.ReadBytes(reader.remaining(), "body");
  switch (compression) {
    case 0:
      if (body.size() > max_decoded_bytes) {
        throw CorruptionError(context + ": body of " + std::to_string(body.size()) + " bytes exceeds the limit of " +
                              std::to_string(max_decoded_bytes));
      }
      return std::string(body);
    case 1:
      return ZstdDecompress(body, max_decoded_bytes, context);
    default:
      throw CorruptionError(context + ": unknown compression format " + std::to_string(compression));
  }
}

}  // namespace cairn::kvstore::ocdbt
