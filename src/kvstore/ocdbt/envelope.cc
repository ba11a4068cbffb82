#include "kvstore/ocdbt/envelope.h"

#include <cstdio>
#include <memory>

#include "cairn/error.h"
#include "core/crc32c.h"
#include "core/zstd.h"
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

}  // namespace

std::string EncodeEnvelope(uint32_t magic, std::string_view body, const Compression& compression) {
  std::string payload;  // version, compression and body: everything between the fixed header and the CRC
  AppendVarint(payload, kFormatVersion);
  AppendVarint(payload, compression.zstd ? 1 : 0);
  if (compression.zstd) {
    payload += ZstdCompress(body, compression.zstd_level, /*content_checksum=*/false);
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
      return ZstdDecompressBounded(body, max_decoded_bytes, context);
    default:
      throw CorruptionError(context + ": unknown compression format " + std::to_string(compression));
  }
}

}  // namespace cairn::kvstore::ocdbt
