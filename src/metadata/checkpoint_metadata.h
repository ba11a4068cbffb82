// `_CHECKPOINT_METADATA`: the step's JSON (item_handlers, metrics, performance_metrics, init and commit
// timestamps, custom_metadata), in Orbax's key order.
#pragma once

#include <filesystem>
#include <memory>

#include "cairn/file_system.h"
#include "cairn/step_metadata.h"

namespace cairn::metadata {

inline constexpr const char* kCheckpointMetadataFile = "_CHECKPOINT_METADATA";
// cairn's CRC-32C of `_CHECKPOINT_METADATA` (in the checksum file format of checksums.h), beside it. A file, not a
// directory: Orbax takes every directory of a step for an item, and ignores files it does not know.
inline constexpr const char* kCheckpointMetadataChecksumFile = "cairn_checkpoint_metadata.crc32c";

std::string EncodeCheckpointMetadata(const StepMetadata& metadata);
// Lenient as Orbax is: missing keys keep their defaults and unknown keys are moved into custom_metadata. Text
// that is not a JSON object is a CorruptionError naming `what`.
StepMetadata DecodeCheckpointMetadata(std::string_view text, const std::string& what);

// Reads `<directory>/_CHECKPOINT_METADATA`; nullopt when the file does not exist. When cairn recorded its CRC-32C,
// the file is checked against it: a CorruptionError names the damaged file (or the damaged checksum file), and a
// missing `_CHECKPOINT_METADATA` whose checksum was recorded is a CorruptionError too.
std::optional<StepMetadata> ReadCheckpointMetadata(FileSystem& fs, const std::filesystem::path& directory);
// Writes `_CHECKPOINT_METADATA` and its checksum file, each fsynced.
void WriteCheckpointMetadata(FileSystem& fs, const std::filesystem::path& directory, const StepMetadata& metadata);

int64_t NowNanoseconds();

}  // namespace cairn::metadata
