// Delta saves at the OCDBT layer (docs/format.md, "Delta steps"): what a new database may share with an earlier one,
// and what it records about its own values so that a later database can share with it.
//
// A shared value is not rewritten: the earlier database's data file is hard-linked (on an object store, copied by
// the service: FileSystem::ShareFile) into the new database's `d/` under the same name, and the new tree points at
// the same byte range there. Each database therefore stays complete on its own (TensorStore and Orbax read it
// unchanged), and deleting the earlier one only drops one link (or leaves the copy alone).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace cairn::kvstore::ocdbt {

// An out-of-line value of the base database.
struct BaseValue {
  std::filesystem::path file;  // the data file holding it (a path the FileSystem opens)
  uint64_t offset = 0;
  uint64_t length = 0;
  std::string sha256;              // raw 32 bytes; empty when the base recorded none for this key
  std::string raw_sha256;          // of the chunk's bytes before encoding (32 bytes); empty when none recorded
  std::optional<uint32_t> raw_crc32c;  // CRC-32C of the chunk's bytes before encoding, when recorded
  std::optional<uint32_t> crc32c;  // from the base's `cairn_checksums/`, when recorded
};

// What a delta save may share: the base database's values by key (for values the caller declares unchanged) and
// its out-of-line values by content (SHA-256 of the stored bytes).
struct DeltaBaseIndex {
  std::map<std::string, BaseValue, std::less<>> by_key;
  std::map<std::string, std::string, std::less<>> inline_by_key;  // values stored inside the tree's leaves
  std::unordered_map<std::string, std::string> key_by_hash;       // sha256 -> a key of by_key holding those bytes
};

// What a database written with delta tracking records (the `cairn_delta/` sidecar of a pytree item).
struct DeltaRecord {
  std::map<std::string, std::string> sha256;      // key -> SHA-256 (raw digest) of out-of-line stored values
  std::map<std::string, std::string> raw_sha256;  // key -> SHA-256 of the chunk's bytes before encoding
  std::map<std::string, uint32_t> raw_crc32c;     // key -> CRC-32C of the chunk's bytes before encoding
  uint64_t bytes_written = 0;                 // out-of-line value bytes appended to this database's own files
  uint64_t bytes_shared = 0;                  // out-of-line value bytes referenced in linked files of the base
};

}  // namespace cairn::kvstore::ocdbt
