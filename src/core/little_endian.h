// Little-endian integers in byte strings: the order of zarr3's shard index, safetensors' header length and zstd's
// frame fields.
#pragma once

#include <cstdint>
#include <string>

namespace cairn {

// Appends the low `bytes` bytes of `v`, least significant first.
inline void AppendLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Writes the low `bytes` bytes of `v` at `p`, least significant first, and advances `p`.
inline void StoreLe(char*& p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) *p++ = static_cast<char>((v >> (8 * i)) & 0xff);
}

// The `bytes`-byte little-endian integer at `p`.
inline uint64_t LoadLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace cairn
