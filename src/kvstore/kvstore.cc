#include "kvstore/kvstore.h"

#include <algorithm>
#include <cstring>

#include "cairn/error.h"
#include "cairn/file_system.h"
#include "core/crc32c.h"

namespace cairn::kvstore {

bool KvStore::ReadInto(std::string_view key, char* out, size_t size, uint32_t* crc32c) {
  auto value = Read(key, size);
  if (!value) return false;
  if (value->size() != size) {
    throw CorruptionError("value of key '" + std::string(key) + "' in " + Describe() + " holds " +
                          std::to_string(value->size()) + " bytes, expected " + std::to_string(size));
  }
  if (size) std::memcpy(out, value->data(), size);
  if (crc32c) *crc32c = Crc32c(*value);
  return true;
}

std::optional<std::string> KvStore::ReadRange(std::string_view key, uint64_t offset, uint64_t length) {
  auto value = Read(key);
  if (!value) return std::nullopt;
  if (offset > value->size() || length > value->size() - offset) {
    throw InvalidArgumentError("range [" + std::to_string(offset) + ", +" + std::to_string(length) +
                               ") is outside the " + std::to_string(value->size()) + "-byte value of key '" +
                               std::string(key) + "' in " + Describe());
  }
  return value->substr(offset, length);
}

std::optional<KvStore::SizedRange> KvStore::ReadRangeUpTo(std::string_view key, uint64_t offset, uint64_t length) {
  const auto size = ValueSize(key);
  if (!size) return std::nullopt;
  if (offset >= *size) return SizedRange{"", *size};
  auto bytes = ReadRange(key, offset, std::min(length, *size - offset));
  if (!bytes) return std::nullopt;
  return SizedRange{std::move(*bytes), *size};
}

std::optional<ValueLocation> KvStore::LocateValue(std::string_view, size_t) { return std::nullopt; }

std::shared_ptr<const std::byte> KvStore::MapValue(std::string_view key, size_t size, MapCheck) {
  auto location = LocateValue(key, size);
  if (!location) return nullptr;
  return location->file->MapReadOnly(location->offset, size);
}

std::optional<uint64_t> KvStore::ValueSize(std::string_view key) {
  auto value = Read(key);
  if (!value) return std::nullopt;
  return value->size();
}

}  // namespace cairn::kvstore
