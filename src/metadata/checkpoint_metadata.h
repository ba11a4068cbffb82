// `_CHECKPOINT_METADATA`: the step's JSON (item_handlers, metrics, performance_metrics, init and commit
// timestamps, custom_metadata), in Orbax's key order.
#pragma once

#include <filesystem>
#include <memory>

#include "cairn/file_system.h"
#include "cairn/step_metadata.h"

namespace cairn::metadata {

inline constexpr const char* kCheckpointMetadataFile = "_CHECKPOINT_METADATA";

std::string EncodeCheckpointMetadata(const StepMetadata& metadata);
// Lenient as Orbax is: missing keys keep their defaults and unknown keys are moved into custom_metadata. Text
// that is not a JSON object is a CorruptionError naming `what`.
StepMetadata DecodeCheckpointMetadata(std::string_view text, const std::string& what);

// Reads `<directory>/_CHECKPOINT_METADATA`; nullopt when the file does not exist.
std::optional<StepMetadata> ReadCheckpointMetadata(FileSystem& fs, const std::filesystem::path& directory);
void WriteCheckpointMetadata(FileSystem& fs, const std::filesystem::path& directory, const StepMetadata& metadata);

int64_t NowNanoseconds();

}  // namespace cairn::metadata
