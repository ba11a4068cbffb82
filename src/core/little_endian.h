// Fixed-width little-endian integers in byte strings: OCDBT's manifest and envelopes, zarr3 shard indexes, the
// safetensors header length.
#pragma once

#include <concepts>
#include <string>

namespace cairn {

template <std::unsigned_integral T>
void AppendLittleEndian(std::string& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// The integer in the sizeof(T) bytes at `p`.
template <std::unsigned_integral T>
T LoadLittleEndian(const char* p) {
  T value = 0;
  for (size_t i = sizeof(T); i-- > 0;) value = static_cast<T>((value << 8) | static_cast<unsigned char>(p[i]));
  return value;
}

}  // namespace cairn
