#include "metadata/checksums.h"

#include <nlohmann/json.hpp>

#include "cairn/error.h"
#include "metadata/python_json.h"

namespace cairn::metadata {
namespace {
constexpr const char* kFormat = "cairn-crc32c-1";
}  // namespace

std::string EncodeChecksums(const Checksums& checksums) {
  nlohmann::json doc;
  doc["format"] = kFormat;
  doc["chunks"] = checksums.chunks;
  doc["files"] = checksums.files;
  return doc.dump();
}

Checksums DecodeChecksums(std::string_view text, const std::string& what) {
  nlohmann::json doc = ParseJson(text, what);
  if (!doc.is_object() || doc.value("format", "") != kFormat) {
    throw CorruptionError(what + " is not a cairn checksum file (" + kFormat + ")");
  }
  Checksums out;
  for (const char* section : {"chunks", "files"}) {
    if (!doc.contains(section) || !doc[section].is_object()) throw CorruptionError(what + ": no \"" + section + "\"");
    auto& map = std::string_view(section) == "chunks" ? out.chunks : out.files;
    for (const auto& [key, value] : doc[section].items()) {
      if (!value.is_number_unsigned() || value.get<uint64_t>() > 0xffffffffu) {
        throw CorruptionError(what + ": the checksum of " + key + " is not a 32-bit number");
      }
      map[key] = value.get<uint32_t>();
    }
  }
  return out;
}

}  // namespace cairn::metadata
