#include "metadata/array_metadata.h"

#include <nlohmann/json.hpp>

#include "cairn/error.h"
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

std::string EncodeShardingFile(const std::vector<std::pair<std::string, std::string>>& shardings) {
  // The outer object is compact and each value is a JSON string holding json.dumps' output, as in the fixtures.
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  for (const auto& [name, sharding] : shardings) doc[UrlSafeBase64(name)] = sharding;
  return doc.dump(-1, ' ', /*ensure_ascii=*/true);
}

std::string EncodeSingleDeviceSharding(const std::vector<std::string>& param_names) {
  std::vector<std::pair<std::string, std::string>> shardings;
  for (const auto& name : param_names) shardings.emplace_back(name, kSingleDeviceShardingJson);
  return EncodeShardingFile(shardings);
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

std::string UrlSafeBase64Decode(std::string_view text, const std::string& what) {
  auto value = [&](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-' || c == '+') return 62;
    if (c == '_' || c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') break;
    int v = value(c);
    if (v < 0) throw CorruptionError(what + ": \"" + std::string(text) + "\" is not base64");
    bits = (bits << 6) | static_cast<uint32_t>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<char>((bits >> count) & 0xff));
    }
  }
  return out;
}

std::map<std::string, nlohmann::json> DecodeSharding(std::string_view text, const std::string& what) {
  nlohmann::json doc = ParseJson(text, what);
  if (!doc.is_object()) throw CorruptionError(what + " is not a JSON object");
  std::map<std::string, nlohmann::json> out;
  for (const auto& [key, value] : doc.items()) {
    if (!value.is_string()) throw CorruptionError(what + ": the sharding of " + key + " is not a JSON string");
    nlohmann::json sharding = ParseJson(value.get<std::string>(), what + " (sharding of " + key + ")");
    if (!sharding.is_object() || !sharding.contains("sharding_type") || !sharding["sharding_type"].is_string()) {
      throw CorruptionError(what + ": the sharding of " + key + " has no \"sharding_type\"");
    }
    out[UrlSafeBase64Decode(key, what)] = std::move(sharding);
  }
  return out;
}

std::map<std::string, ArrayMetadataEntry> DecodeArrayMetadatas(std::string_view text, const std::string& what) {
  nlohmann::json doc = ParseJson(text, what);
  if (!doc.is_object() || !doc.contains("array_metadatas") || !doc["array_metadatas"].is_array()) {
    throw CorruptionError(what + " has no \"array_metadatas\" list");
  }
  auto shape = [&](const nlohmann::json& value, const std::string& field) {
    Shape out;
    if (!value.is_array()) throw CorruptionError(what + ": \"" + field + "\" is not a list");
    for (const auto& dim : value) {
      if (!dim.is_number_integer() || dim.get<int64_t>() < 0) throw CorruptionError(what + ": bad \"" + field + "\"");
      out.push_back(dim.get<int64_t>());
    }
    return out;
  };
  std::map<std::string, ArrayMetadataEntry> out;
  for (const auto& item : doc["array_metadatas"]) {
    if (!item.is_object() || !item.contains("array_metadata") || !item["array_metadata"].is_object()) {
      throw CorruptionError(what + ": an entry has no \"array_metadata\" object");
    }
    const auto& m = item["array_metadata"];
    if (!m.contains("param_name") || !m["param_name"].is_string()) throw CorruptionError(what + ": no \"param_name\"");
    ArrayMetadataEntry entry;
    entry.param_name = m["param_name"].get<std::string>();
    entry.write_shape = shape(m.value("write_shape", nlohmann::json()), "write_shape");
    entry.chunk_shape = shape(m.value("chunk_shape", nlohmann::json()), "chunk_shape");
    out[entry.param_name] = std::move(entry);
  }
  return out;
}

}  // namespace cairn::metadata
