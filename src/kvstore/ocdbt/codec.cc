#include "kvstore/ocdbt/codec.h"

#include <algorithm>

#include "cairn/error.h"
#include "core/little_endian.h"

namespace cairn::kvstore::ocdbt {

void AppendVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

size_t VarintLength(uint64_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

void AppendU32BE(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((value >> shift) & 0xff));
}

void AppendU32LE(std::string& out, uint32_t value) { AppendLe(out, value, 4); }

void AppendU64LE(std::string& out, uint64_t value) { AppendLe(out, value, 8); }

size_t CommonPrefixLength(std::string_view a, std::string_view b) {
  auto [ia, ib] = std::mismatch(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(std::min(a.size(), b.size())),
                                b.begin());
  return static_cast<size_t>(ia - a.begin());
}

void ByteReader::Fail(std::string_view message) const {
  throw CorruptionError(context_ + ": " + std::string(message) + " (at byte " + std::to_string(pos_) +
                        " of " + std::to_string(data_.size()) + " decoded bytes)");
}

uint8_t ByteReader::ReadByte(std::string_view field) {
  if (remaining() < 1) Fail("truncated " + std::string(field));
  return static_cast<uint8_t>(data_[pos_++]);
}

uint64_t ByteReader::ReadVarint(std::string_view field) {
  uint64_t value = 0;
  for (size_t i = 0; i < kMaxVarintBytes; ++i) {
    if (pos_ >= data_.size()) Fail("truncated varint " + std::string(field));
    auto byte = static_cast<uint8_t>(data_[pos_++]);
    // The tenth byte holds only bit 63; anything more would overflow 64 bits.
    if (i == kMaxVarintBytes - 1 && byte > 1) Fail("varint " + std::string(field) + " overflows 64 bits");
    value |= uint64_t{byte & 0x7fu} << (7 * i);
    if ((byte & 0x80) == 0) return value;
  }
  Fail("varint " + std::string(field) + " is longer than 10 bytes");
}

uint64_t ByteReader::ReadVarint(std::string_view field, uint64_t max) {
  uint64_t value = ReadVarint(field);
  if (value > max) {
    Fail(std::string(field) + " = " + std::to_string(value) + " exceeds its maximum of " + std::to_string(max));
  }
  return value;
}

uint32_t ByteReader::ReadU32BE(std::string_view field) {
  std::string_view b = ReadBytes(4, field);
  uint32_t value = 0;
  for (char c : b) value = (value << 8) | static_cast<uint8_t>(c);
  return value;
}

uint32_t ByteReader::ReadU32LE(std::string_view field) {
  return static_cast<uint32_t>(LoadLe(ReadBytes(4, field).data(), 4));
}

uint64_t ByteReader::ReadU64LE(std::string_view field) {
  return LoadLe(ReadBytes(8, field).data(), 8);
}

std::string_view ByteReader::ReadBytes(size_t length, std::string_view field) {
  if (length > remaining()) {
    Fail("truncated " + std::string(field) + ": needs " + std::to_string(length) + " bytes, " +
         std::to_string(remaining()) + " left");
  }
  std::string_view out = data_.substr(pos_, length);
  pos_ += length;
  return out;
}

void ByteReader::ExpectEnd() {
  if (remaining() != 0) Fail(std::to_string(remaining()) + " unexpected trailing bytes");
}

}  // namespace cairn::kvstore::ocdbt
