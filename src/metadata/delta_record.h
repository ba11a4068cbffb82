// `cairn_delta/process_<i>`: what process i's part of a pytree item holds for delta saves (docs/format.md, "Delta
// steps"): the SHA-256 of every out-of-line chunk value, so that a later save can find unchanged chunks by content,
// and how many of those bytes this step wrote and how many it shares with its base (`cairn info`). Orbax never looks
// at this directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/file_system.h"

namespace cairn::metadata {

inline constexpr const char* kDeltaDir = "cairn_delta";

struct DeltaRecordFile {
  std::map<std::string, std::string> sha256;      // kvstore key -> SHA-256 (raw 32 bytes) of the stored value
  std::map<std::string, std::string> raw_sha256;  // kvstore key -> SHA-256 of the chunk's bytes before encoding
  std::map<std::string, uint32_t> raw_crc32c;     // kvstore key -> CRC-32C of the chunk's bytes before encoding
  uint64_t bytes_written = 0;
  uint64_t bytes_shared = 0;
  std::string base;  // the base step's item directory, as given; "" for a full save
  // Random, one per save: lets the process that wrote this step recognise it as its own last save (Array::FromShared
  // buffers it still holds are then known unchanged). "" when not recorded (older sidecars).
  std::string save_id;
};

// JSON with its own CRC-32C, as `cairn_checksums/` files. Format "cairn-delta-1"; "raw_sha256", "raw_crc32c" and "save_id" are
// optional fields (sidecars without them still read, and readers that predate them ignore them).
std::string EncodeDeltaRecord(const DeltaRecordFile& record);
// CorruptionError naming `what` when malformed or failing its own CRC.
DeltaRecordFile DecodeDeltaRecord(std::string_view text, const std::string& what);

// Every `cairn_delta/process_*` file of the item, merged (byte counts summed); nullopt when the item has none (saved
// without delta tracking, or by Orbax).
std::optional<DeltaRecordFile> ReadItemDeltaRecord(FileSystem& fs, const std::filesystem::path& item_dir);

}  // namespace cairn::metadata
