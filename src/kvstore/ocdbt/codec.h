// Byte-level building blocks of the OCDBT format: protobuf-style varints (unsigned LEB128), fixed-width integers,
// and a bounds-checked reader over a decoded buffer.
//
// Every size in an OCDBT file comes from disk, so ByteReader checks each read against the bytes actually present
// and reports a CorruptionError that names the object being decoded (its file and offset) instead of crashing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cairn::kvstore::ocdbt {

constexpr size_t kMaxVarintBytes = 10;

// Appends `value` as an unsigned LEB128 varint.
void AppendVarint(std::string& out, uint64_t value);
// Number of bytes AppendVarint writes for `value`.
size_t VarintLength(uint64_t value);

void AppendU32BE(std::string& out, uint32_t value);
void AppendU32LE(std::string& out, uint32_t value);
void AppendU64LE(std::string& out, uint64_t value);

// Length of the common prefix of two byte strings.
size_t CommonPrefixLength(std::string_view a, std::string_view b);

class ByteReader {
 public:
  // `context` names what is decoded ("B+tree node in /db/d/ab12 at offset 0"); it prefixes every error.
  ByteReader(std::string_view data, std::string context) : data_(data), context_(std::move(context)) {}

  uint8_t ReadByte(std::string_view field);
  uint64_t ReadVarint(std::string_view field);
  // A varint that must not exceed `max` (field widths narrower than 64 bits, counts bounded by the format).
  uint64_t ReadVarint(std::string_view field, uint64_t max);
  uint32_t ReadU32BE(std::string_view field);
  uint32_t ReadU32LE(std::string_view field);
  uint64_t ReadU64LE(std::string_view field);
  // A view into the underlying buffer; valid as long as that buffer is.
  std::string_view ReadBytes(size_t length, std::string_view field);

  size_t position() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }
  // CorruptionError unless every byte was consumed: trailing bytes mean the encoder and decoder disagree.
  void ExpectEnd();

  const std::string& context() const { return context_; }
  [[noreturn]] void Fail(std::string_view message) const;

 private:
  std::string_view data_;
  size_t pos_ = 0;
  std::string context_;
};

}  // namespace cairn::kvstore::ocdbt
