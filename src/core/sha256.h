// SHA-256 (FIPS 180-4), from OpenSSL: the content hash of delta checkpoints (a chunk is shared with a base step
// when its SHA-256 and CRC-32C both match) and the digest inside AWS Signature V4, with its HMAC.
#pragma once

#include <string>
#include <string_view>

namespace cairn {

// The raw 32-byte digest of `data`.
std::string Sha256(std::string_view data);
// HMAC-SHA-256 (RFC 2104) of `data` under `key`: the raw 32 bytes.
std::string HmacSha256(std::string_view key, std::string_view data);

}  // namespace cairn
