// `cairn_checksums/process_<i>`: a CRC-32C of every chunk process i wrote and of every metadata file it wrote.
// Orbax never looks at this directory, so checkpoints stay Orbax's; cairn checks what it finds there on every
// restore (unless told not to), and restores checkpoints without it (Orbax's own) as they are.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace cairn::metadata {

inline constexpr const char* kChecksumsDir = "cairn_checksums";

struct Checksums {
  std::map<std::string, uint32_t> chunks;  // kvstore key ("params.w/0.0") -> CRC-32C of the stored value
  std::map<std::string, uint32_t> files;   // item-relative path ("_METADATA") -> CRC-32C of the file
};

std::string EncodeChecksums(const Checksums& checksums);
// CorruptionError naming `what` when malformed.
Checksums DecodeChecksums(std::string_view text, const std::string& what);

}  // namespace cairn::metadata
