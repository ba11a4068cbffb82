#include "metadata/delta_record.h"

#include <nlohmann/json.hpp>

#include "cairn/error.h"
#include "core/hex.h"
#include "metadata/checksums.h"
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
  for (const auto& [key, value] : doc["sha256"].items()) {
    std::optional<std::string> sha = value.is_string() ? HexDecode(value.get<std::string>()) : std::nullopt;
    if (!sha || sha->size() != 32) throw CorruptionError(what + ": the SHA-256 of " + key + " is not 64 hex digits");
    out.sha256[key] = std::move(*sha);
  }
  return out;
}

std::optional<DeltaRecordFile> ReadItemDeltaRecord(FileSystem& fs, const std::filesystem::path& item_dir) {
  const auto dir = item_dir / kDeltaDir;
  if (!fs.IsDirectory(dir)) return std::nullopt;
  DeltaRecordFile all;
  for (const auto& name : fs.ListDir(dir)) {
    const auto relative = std::filesystem::path(kDeltaDir) / name;
    DeltaRecordFile part =
        DecodeDeltaRecord(fs.ReadFileBelow(item_dir, relative, kMaxChecksumFileBytes), (item_dir / relative).string());
    all.sha256.merge(part.sha256);
    all.bytes_written += part.bytes_written;
    all.bytes_shared += part.bytes_shared;
    if (all.base.empty()) all.base = part.base;
  }
  return all;
}

}  // namespace cairn::metadata
