#include "metadata/array_metadata.h"

#include <nlohmann/json.hpp>

#include "metadata/python_json.h"

namespace cairn::metadata {

std::string UrlSafeBase64(std::string_view data) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t n = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63], kAlphabet[n & 63]};
  }
  if (i + 1 == data.size()) {
    uint32_t n = uint8_t(data[i]) << 16;
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], '=', '='};
  } else if (i + 2 == data.size()) {
    uint32_t n = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8);
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63], '='};
  }
  return out;
}

std::string EncodeSingleDeviceSharding(const std::vector<std::string>& param_names) {
  // The outer object is compact and each value is a JSON string holding json.dumps' output, as in the fixtures.
  const std::string sharding = R"({"sharding_type": "SingleDeviceSharding", "device_str": "cpu:0"})";
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  for (const auto& name : param_names) doc[UrlSafeBase64(name)] = sharding;
  return doc.dump(-1, ' ', /*ensure_ascii=*/true);
}

std::string EncodeArrayMetadatas(const std::vector<ArrayMetadataEntry>& entries) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& entry : entries) {
    nlohmann::ordered_json metadata;
    metadata["param_name"] = entry.param_name;
    metadata["write_shape"] = entry.write_shape;
    metadata["chunk_shape"] = entry.chunk_shape;
    metadata["ext_metadata"] = nullptr;
    list.push_back({{"array_metadata", metadata}});
  }
  return PythonJsonDumps({{"array_metadatas", list}});
}

}  // namespace cairn::metadata
