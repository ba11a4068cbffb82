// `_sharding` and `array_metadatas/process_<i>`: per-array facts Orbax records beside `_METADATA`.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cairn/array.h"

namespace cairn::metadata {

inline constexpr const char* kShardingFile = "_sharding";
inline constexpr const char* kArrayMetadatasDir = "array_metadatas";

// URL-safe base64 with padding, as Python's base64.urlsafe_b64encode: `_sharding` keys ("YQ==" for "a").
std::string UrlSafeBase64(std::string_view data);

// `_sharding` for arrays held whole by one process: Orbax's SingleDeviceSharding on "cpu:0".
std::string EncodeSingleDeviceSharding(const std::vector<std::string>& param_names);

struct ArrayMetadataEntry {
  std::string param_name;
  Shape write_shape;
  Shape chunk_shape;
};
// `array_metadatas/process_<i>`.
std::string EncodeArrayMetadatas(const std::vector<ArrayMetadataEntry>& entries);

}  // namespace cairn::metadata
