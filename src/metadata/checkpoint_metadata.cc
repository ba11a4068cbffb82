#include "metadata/checkpoint_metadata.h"

#include <chrono>

#include "cairn/error.h"
#include "metadata/checksums.h"
#include "metadata/python_json.h"

namespace cairn::metadata {

std::string EncodeCheckpointMetadata(const StepMetadata& m) {
  nlohmann::ordered_json doc;
  doc["item_handlers"] = nlohmann::ordered_json(m.item_handlers);
  doc["metrics"] = nlohmann::ordered_json(m.metrics);
  doc["performance_metrics"] = nlohmann::ordered_json(m.performance_metrics);
  doc["init_timestamp_nsecs"] = m.init_timestamp_nsecs ? nlohmann::ordered_json(*m.init_timestamp_nsecs) : nullptr;
  doc["commit_timestamp_nsecs"] =
      m.commit_timestamp_nsecs ? nlohmann::ordered_json(*m.commit_timestamp_nsecs) : nullptr;
  doc["custom_metadata"] = nlohmann::ordered_json(m.custom_metadata);
  return PythonJsonDumps(doc);
}

StepMetadata DecodeCheckpointMetadata(std::string_view text, const std::string& what) {
  nlohmann::json doc = ParseJson(text, what);
  if (!doc.is_object()) throw CorruptionError(what + " is not a JSON object");
  StepMetadata m;
  auto integer = [&](const char* key) -> std::optional<int64_t> {
    if (!doc.contains(key) || doc[key].is_null()) return std::nullopt;
    if (!doc[key].is_number_integer()) throw CorruptionError(what + ": \"" + key + "\" is not an integer");
    return doc[key].get<int64_t>();
  };
  for (const auto& [key, value] : doc.items()) {
    if (key == "item_handlers") m.item_handlers = value;
    else if (key == "metrics") m.metrics = value.is_null() ? nlohmann::json::object() : value;
    else if (key == "performance_metrics") m.performance_metrics = value.is_null() ? nlohmann::json::object() : value;
    else if (key == "init_timestamp_nsecs") m.init_timestamp_nsecs = integer("init_timestamp_nsecs");
    else if (key == "commit_timestamp_nsecs") m.commit_timestamp_nsecs = integer("commit_timestamp_nsecs");
    else if (key == "custom_metadata") {
      if (!value.is_null()) {
        if (!value.is_object()) throw CorruptionError(what + ": \"custom_metadata\" is not an object");
        m.custom_metadata.update(value);
      }
    } else {
      m.custom_metadata[key] = value;  // Orbax keeps unknown keys as custom metadata
    }
  }
  return m;
}

std::optional<StepMetadata> ReadCheckpointMetadata(FileSystem& fs, const std::filesystem::path& directory) {
  const auto path = directory / kCheckpointMetadataFile;
  auto text = ReadFileWithChecksum(fs, path, directory / kCheckpointMetadataChecksumFile);
  if (!text) return std::nullopt;
  return DecodeCheckpointMetadata(*text, path.string());
}

void WriteCheckpointMetadata(FileSystem& fs, const std::filesystem::path& directory, const StepMetadata& metadata) {
  // (A crash between the checksum and the file leaves a checksum the old file fails: right for a save that never
  // committed, and a committed checkpoint is never rewritten.)
  WriteFileWithChecksum(fs, directory / kCheckpointMetadataFile, EncodeCheckpointMetadata(metadata),
                        directory / kCheckpointMetadataChecksumFile);
}

int64_t NowNanoseconds() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace cairn::metadata
