#include "metadata/checksums.h"

#include <nlohmann/json.hpp>

#include "cairn/error.h"
#include "core/crc32c.h"
#include "io/temporary_path.h"
#include "metadata/process_files.h"
#include "metadata/python_json.h"
#include "metadata/self_crc.h"

namespace cairn::metadata {
namespace {

// Version 1 had no checksum of its own, so a damaged checksum file could only be told from a damaged data file
// by luck. Version 2 carries "crc32c": the CRC-32C of the compact dump of the document without that member (the
// members are sorted, so the dump is canonical). Version 1 files still read.
constexpr const char* kFormatV1 = "cairn-crc32c-1";
constexpr const char* kFormat = "cairn-crc32c-2";

}  // namespace

std::string EncodeChecksums(const Checksums& checksums) {
  nlohmann::json doc;
  doc["format"] = kFormat;
  doc["chunks"] = checksums.chunks;
  doc["files"] = checksums.files;
  if (!checksums.chunk_blocks.empty()) {
    doc["block_bytes"] = kChecksumBlockBytes;
    doc["chunk_blocks"] = checksums.chunk_blocks;
  }
  AddSelfCrc(doc);
  return doc.dump();
}

Checksums DecodeChecksums(std::string_view text, const std::string& what) {
  nlohmann::json doc = ParseJson(text, what);
  const std::string format = doc.is_object() && doc.contains("format") && doc["format"].is_string()
                                 ? doc["format"].get<std::string>()
                                 : "";
  if (format != kFormat && format != kFormatV1) {
    throw CorruptionError(what + " is not a cairn checksum file (" + kFormat + "): the checksum file is damaged");
  }
  if (format == kFormat || doc.contains(kSelfCrcMember)) {
    bool present = false;
    const bool intact = TakeSelfCrc(doc, &present);
    if (!present) throw CorruptionError(what + ": the checksum file has no valid CRC-32C of its own: it is damaged");
    if (format != kFormat || !intact) {
      throw CorruptionError(what + " fails its own CRC-32C check: the checksum file is damaged (the files it "
                            "describes were not checked)");
    }
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
  if (doc.contains("chunk_blocks")) {
    if (!doc.contains("block_bytes") || doc["block_bytes"] != kChecksumBlockBytes || !doc["chunk_blocks"].is_object()) {
      throw CorruptionError(what + ": \"chunk_blocks\" without the block size " + std::to_string(kChecksumBlockBytes));
    }
    for (const auto& [key, list] : doc["chunk_blocks"].items()) {
      if (!list.is_array()) throw CorruptionError(what + ": the block checksums of " + key + " are not a list");
      auto& crcs = out.chunk_blocks[key];
      crcs.reserve(list.size());
      for (const auto& value : list) {
        if (!value.is_number_unsigned() || value.get<uint64_t>() > 0xffffffffu) {
          throw CorruptionError(what + ": a block checksum of " + key + " is not a 32-bit number");
        }
        crcs.push_back(value.get<uint32_t>());
      }
    }
  }
  return out;
}

Checksums ReadItemChecksums(FileSystem& fs, const std::filesystem::path& item_dir) {
  Checksums all;
  for (Checksums& part : ReadProcessFiles(fs, item_dir, kChecksumsDir, DecodeChecksums)) MergeChecksums(all, part);
  return all;
}

void MergeChecksums(Checksums& into, Checksums& part) {
  into.chunks.merge(part.chunks);
  into.files.merge(part.files);
  into.chunk_blocks.merge(part.chunk_blocks);
}

void CheckItemFile(const std::filesystem::path& item_dir, const std::string& relative, std::string_view text,
                   const Checksums& sums) {
  if (auto it = sums.files.find(relative); it != sums.files.end() && Crc32c(text) != it->second) {
    throw CorruptionError((item_dir / relative).string() +
                          " fails its CRC-32C check: the file is not the one that was saved");
  }
}

std::string ReadItemFile(FileSystem& fs, const std::filesystem::path& item_dir, const std::string& relative,
                         const Checksums& sums, uint64_t max_bytes) {
  std::string text = fs.ReadFileBelow(item_dir, relative, max_bytes);
  CheckItemFile(item_dir, relative, text, sums);
  return text;
}

void WriteFileWithChecksum(FileSystem& fs, const std::filesystem::path& file, std::string_view text,
                           const std::filesystem::path& checksum_file) {
  Checksums checksums;
  checksums.files[file.filename().string()] = Crc32c(text);
  fs.WriteFile(checksum_file, EncodeChecksums(checksums), /*sync=*/true);
  fs.WriteFile(file, text, /*sync=*/true);
}

std::optional<std::string> ReadFileWithChecksum(FileSystem& fs, const std::filesystem::path& file,
                                                const std::filesystem::path& checksum_file) {
  std::optional<uint32_t> recorded;
  if (fs.Exists(checksum_file)) {
    const Checksums checksums = DecodeChecksums(
        fs.ReadFileBelow(checksum_file.parent_path(), checksum_file.filename()), checksum_file.string());
    auto it = checksums.files.find(file.filename().string());
    if (it == checksums.files.end()) {
      throw CorruptionError(checksum_file.string() + " holds no checksum for " + file.filename().string() +
                            ": the checksum file is damaged");
    }
    recorded = it->second;
  }
  if (!fs.Exists(file)) {
    if (recorded) {
      throw CorruptionError(file.string() + " is missing, though it was saved (its checksum is in " +
                            checksum_file.string() + ")");
    }
    return std::nullopt;
  }
  // Below its directory: the file itself must not be a link (the directory is the checkpoint, the caller's).
  std::string text = fs.ReadFileBelow(file.parent_path(), file.filename());
  if (recorded && Crc32c(text) != *recorded) {
    throw CorruptionError(file.string() + " fails its CRC-32C check: the file is not the one that was saved");
  }
  return text;
}

std::filesystem::path ChecksumFileFor(const std::filesystem::path& file) {
  return file.parent_path() / ("cairn_" + file.filename().string() + ".crc32c");
}

bool IsChecksumFileName(const std::string& name) {
  constexpr std::string_view kPrefix = "cairn_", kSuffix = ".crc32c";
  return name.size() > kPrefix.size() + kSuffix.size() && name.compare(0, kPrefix.size(), kPrefix) == 0 &&
         name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
}

bool IsBookkeepingFileName(const std::string& name) {
  return IsChecksumFileName(name) || name == io::kCommitSuccessFile;
}

}  // namespace cairn::metadata
