// `cairn_checksums/process_<i>`: a CRC-32C of every chunk process i wrote and of every metadata file it wrote.
// Orbax never looks at this directory, so checkpoints stay Orbax's; cairn checks what it finds there on every
// restore (unless told not to), and restores checkpoints without it (Orbax's own) as they are.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/file_system.h"
#include "core/crc32c.h"

namespace cairn::metadata {

inline constexpr const char* kChecksumsDir = "cairn_checksums";

// Chunks longer than this also get a CRC-32C per block of this many bytes, so that a restore that reads only a
// byte range of a chunk (a box that cuts an uncompressed chunk) checks the blocks it reads, not nothing.
inline constexpr uint64_t kChecksumBlockBytes = kCrc32cBlockBytes;

// The most a `cairn_checksums/process_<i>` file may hold: about 12 bytes per block CRC, so this covers several TiB
// written by one process. It is larger than kMaxMetadataFileBytes for that reason only; past it, the file's size is
// damage, and it is refused before it is read.
inline constexpr uint64_t kMaxChecksumFileBytes = uint64_t{1} << 30;

struct Checksums {
  std::map<std::string, uint32_t> chunks;  // kvstore key ("params.w/0.0") -> CRC-32C of the stored value
  std::map<std::string, uint32_t> files;   // item-relative path ("_METADATA") -> CRC-32C of the file
  // kvstore key -> CRC-32C of each kChecksumBlockBytes block of the value (the last one shorter), for values
  // longer than one block.
  std::map<std::string, std::vector<uint32_t>> chunk_blocks;
};

std::string EncodeChecksums(const Checksums& checksums);
// CorruptionError naming `what` when malformed.
Checksums DecodeChecksums(std::string_view text, const std::string& what);

// Every `cairn_checksums/process_*` file of the item at `item_dir`, merged; empty when there are none (Orbax's
// items). Each is read without following links (FileSystem::ReadFileBelow); a damaged one is a CorruptionError
// naming it.
Checksums ReadItemChecksums(FileSystem& fs, const std::filesystem::path& item_dir);
// Adds `part` (one process's file) to `into`, leaving in `part` what `into` already had.
void MergeChecksums(Checksums& into, Checksums& part);
// A CorruptionError naming the file unless `text`, the item's file `relative`, has the CRC-32C `sums` records for
// it (or `sums` records none).
void CheckItemFile(const std::filesystem::path& item_dir, const std::string& relative, std::string_view text,
                   const Checksums& sums);
// The item's metadata file `relative` ("_METADATA"), read without following links and checked against the CRC-32C
// `sums` records for it, if any: a mismatch is a CorruptionError naming the file.
std::string ReadItemFile(FileSystem& fs, const std::filesystem::path& item_dir, const std::string& relative,
                         const Checksums& sums, uint64_t max_bytes = kMaxMetadataFileBytes);

// A single file checked on its own, outside an item's `cairn_checksums/` (the step's `_CHECKPOINT_METADATA`, a JSON
// item): its CRC-32C is kept in `checksum_file` (a sibling file; Orbax ignores files it does not know), in the
// format above. The checksum is written first, then the file, each fsynced.
void WriteFileWithChecksum(FileSystem& fs, const std::filesystem::path& file, std::string_view text,
                           const std::filesystem::path& checksum_file);
// The file's text, checked when `checksum_file` exists (Orbax's files have none): a mismatch, or the file missing
// while its checksum is there, is a CorruptionError naming the file; a damaged checksum file, one naming that.
// nullopt when neither exists.
std::optional<std::string> ReadFileWithChecksum(FileSystem& fs, const std::filesystem::path& file,
                                                const std::filesystem::path& checksum_file);
// `cairn_<name>.crc32c` beside `file`.
std::filesystem::path ChecksumFileFor(const std::filesystem::path& file);
// Whether a file name is such a checksum file (`cairn_<name>.crc32c`): tools listing an item's files skip them.
bool IsChecksumFileName(const std::string& name);
// Whether a file in an item's directory is the checkpoint's bookkeeping rather than the item's own: a checksum file
// above, or the commit marker `commit_success.txt`, which Orbax writes into every item of a Composite too.
bool IsBookkeepingFileName(const std::string& name);

}  // namespace cairn::metadata
