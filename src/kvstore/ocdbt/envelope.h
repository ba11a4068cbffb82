// The envelope shared by every OCDBT object (manifest, version-tree node, B+tree node):
//
//   magic:u32 BE | length:u64 LE (whole object, CRC included) | version:varint (0) | compression:varint
//   | body (raw, or one zstd stream when compression = 1) | crc32c:u32 LE over every preceding byte
//
// The CRC covers the header too, so a writer must know the final length first: Encode compresses the body before
// assembling the header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cairn::kvstore::ocdbt {

constexpr uint32_t kManifestMagic = 0x0cdb3a2a;
constexpr uint32_t kVersionTreeNodeMagic = 0x0cdb1234;
constexpr uint32_t kBtreeNodeMagic = 0x0cdb20de;

// The compression an encoder applies to envelope bodies (the database config's compression_method).
struct Compression {
  bool zstd = true;
  int32_t zstd_level = 0;  // 0 is zstd's default level, which is what TensorStore (and so Orbax) writes
};

std::string EncodeEnvelope(uint32_t magic, std::string_view body, const Compression& compression);

// Verifies magic, length and CRC, then returns the decoded body. A body that would decode to more than
// `max_decoded_bytes` is corrupt: the cap bounds memory no matter what the bytes claim. `context` names the object
// (file and offset) in errors.
std::string DecodeEnvelope(std::string_view encoded, uint32_t magic, size_t max_decoded_bytes,
                           const std::string& context);

}  // namespace cairn::kvstore::ocdbt
