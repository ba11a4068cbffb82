#include "kvstore/kvstore.h"

#include <cstring>

#include "cairn/error.h"

namespace cairn::kvstore {

bool KvStore::ReadInto(std::string_view key, char* out, size_t size) {
  auto value = Read(key);
  if (!value) return false;
  if (value->size() != size) {
    throw CorruptionError("value of key '" + std::string(key) + "' in " + Describe() + " holds " +
                          std::to_string(value->size()) + " bytes, expected " + std::to_string(size));
  }
  if (size) std::memcpy(out, value->data(), size);
  return true;
}

}  // namespace cairn::kvstore
