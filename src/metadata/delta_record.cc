#include "metadata/delta_record.h"

#include <nlohmann/json.hpp>

#include "cairn/error.h"
#include "core/hex.h"
#include "metadata/checksums.h"
#include "metadata/process_files.h"
#include "metadata/python_json.h"
#include "metadata/self_crc.h"

namespace cairn::metadata {
namespace {

constexpr const char* kFormat = "cairn-delta-1";

}  // namespace

std::string EncodeDeltaRecord(const DeltaRecordFile& record) {
  nlohmann::json doc;
  doc["format"] = kFormat;
  nlohmann::json hashes = nlohmann::json::object();
  for (const auto& [key, sha] : record.sha256) hashes[key] = HexEncode(sha);
  doc["sha256"] = std::move(hashes);
  if (!record.raw_sha256.empty()) {
    nlohmann::json raw = nlohmann::json::object();
    for (const auto& [key, sha] : record.raw_sha256) raw[key] = HexEncode(sha);
    doc["raw_sha256"] = std::move(raw);
  }
  if (!record.raw_crc32c.empty()) doc["raw_crc32c"] = record.raw_crc32c;
  if (!record.save_id.empty()) doc["save_id"] = record.save_id;
  doc["bytes_written"] = record.bytes_written;
  doc["bytes_shared"] = record.bytes_shared;
  doc["base"] = record.base;
  AddSelfCrc(doc);
  return doc.dump();
}

DeltaRecordFile DecodeDeltaRecord(std::string_view text, const std::string& what) {
  nlohmann::json doc = ParseJson(text, what);
  if (!doc.is_object() || doc.value("format", "") != kFormat) {
    throw CorruptionError(what + " is not a cairn delta record (" + kFormat + "): the file is damaged");
  }
  bool present = false;
  const bool intact = TakeSelfCrc(doc, &present);
  if (!present) throw CorruptionError(what + ": the delta record has no valid CRC-32C of its own: it is damaged");
  if (!intact) throw CorruptionError(what + " fails its own CRC-32C check: it is damaged");
  DeltaRecordFile out;
  for (const char* field : {"bytes_written", "bytes_shared"}) {
    if (!doc.contains(field) || !doc[field].is_number_unsigned()) {
      throw CorruptionError(what + ": no \"" + field + "\"");
    }
  }
  out.bytes_written = doc["bytes_written"].get<uint64_t>();
  out.bytes_shared = doc["bytes_shared"].get<uint64_t>();
  if (!doc.contains("base") || !doc["base"].is_string()) throw CorruptionError(what + ": no \"base\"");
  out.base = doc["base"].get<std::string>();
  if (!doc.contains("sha256") || !doc["sha256"].is_object()) throw CorruptionError(what + ": no \"sha256\"");
  auto digests = [&](const nlohmann::json& object, std::map<std::string, std::string>& into) {
    for (const auto& [key, value] : object.items()) {
      std::optional<std::string> sha = value.is_string() ? HexDecode(value.get<std::string>()) : std::nullopt;
      if (!sha || sha->size() != 32) throw CorruptionError(what + ": the SHA-256 of " + key + " is not 64 hex digits");
      into[key] = std::move(*sha);
    }
  };
  digests(doc["sha256"], out.sha256);
  if (doc.contains("raw_sha256")) {
    if (!doc["raw_sha256"].is_object()) throw CorruptionError(what + ": \"raw_sha256\" is not an object");
    digests(doc["raw_sha256"], out.raw_sha256);
  }
  if (doc.contains("raw_crc32c")) {
    if (!doc["raw_crc32c"].is_object()) throw CorruptionError(what + ": \"raw_crc32c\" is not an object");
    for (const auto& [key, value] : doc["raw_crc32c"].items()) {
      if (!value.is_number_unsigned() || value.get<uint64_t>() > 0xffffffffu) {
        throw CorruptionError(what + ": the CRC-32C of " + key + " is not a 32-bit number");
      }
      out.raw_crc32c[key] = value.get<uint32_t>();
    }
  }
  if (doc.contains("save_id")) {
    if (!doc["save_id"].is_string()) throw CorruptionError(what + ": \"save_id\" is not a string");
    out.save_id = doc["save_id"].get<std::string>();
  }
  return out;
}

std::optional<DeltaRecordFile> ReadItemDeltaRecord(FileSystem& fs, const std::filesystem::path& item_dir) {
  if (!fs.IsDirectory(item_dir / kDeltaDir)) return std::nullopt;
  const std::vector<DeltaRecordFile> parts = ReadProcessFiles(fs, item_dir, kDeltaDir, DecodeDeltaRecord);
  DeltaRecordFile all;
  for (DeltaRecordFile part : parts) {
    all.sha256.merge(part.sha256);
    all.raw_sha256.merge(part.raw_sha256);
    all.raw_crc32c.merge(part.raw_crc32c);
    // A save is recognised by its id only when one process wrote the whole item.
    all.save_id = parts.size() == 1 ? part.save_id : "";
    all.bytes_written += part.bytes_written;
    all.bytes_shared += part.bytes_shared;
    if (all.base.empty()) all.base = part.base;
  }
  return all;
}

}  // namespace cairn::metadata
