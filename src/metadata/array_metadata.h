// `_sharding` and `array_metadatas/process_<i>`: per-array facts Orbax records beside `_METADATA`.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/array.h"

namespace cairn::metadata {

inline constexpr const char* kShardingFile = "_sharding";
inline constexpr const char* kArrayMetadatasDir = "array_metadatas";

// URL-safe base64 with padding, as Python's base64.urlsafe_b64encode: `_sharding` keys ("YQ==" for "a").
std::string UrlSafeBase64(std::string_view data);

// Orbax's sharding of an array held whole by one process: SingleDeviceSharding on "cpu:0".
inline constexpr const char* kSingleDeviceShardingJson =
    R"({"sharding_type": "SingleDeviceSharding", "device_str": "cpu:0"})";
// `_sharding`: (parameter name, sharding JSON text) pairs, in order.
std::string EncodeShardingFile(const std::vector<std::pair<std::string, std::string>>& shardings);
// `_sharding` for arrays held whole by one process.
std::string EncodeSingleDeviceSharding(const std::vector<std::string>& param_names);

struct ArrayMetadataEntry {
  std::string param_name;
  Shape write_shape;
  Shape chunk_shape;
};
// `array_metadatas/process_<i>`.
std::string EncodeArrayMetadatas(const std::vector<ArrayMetadataEntry>& entries);

// Reading them back. Both are optional (Orbax's fixtures have variants without them); when present they must be
// well formed, or a CorruptionError names the file.
//   `_sharding`: parameter name -> the sharding's JSON object (keys are decoded from base64).
std::map<std::string, nlohmann::json> DecodeSharding(std::string_view text, const std::string& what);
//   `array_metadatas/process_<i>`: parameter name -> its entry.
std::map<std::string, ArrayMetadataEntry> DecodeArrayMetadatas(std::string_view text, const std::string& what);
std::string UrlSafeBase64Decode(std::string_view text, const std::string& what);

}  // namespace cairn::metadata
