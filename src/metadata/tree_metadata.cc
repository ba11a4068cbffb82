#include "metadata/tree_metadata.h"

#include "cairn/error.h"
#include "metadata/python_json.h"

namespace cairn::metadata {

std::string EncodeTreeMetadata(const TreeMetadata& m) {
  nlohmann::ordered_json tree = nlohmann::ordered_json::object();
  for (const auto& entry : m.entries) {
    nlohmann::ordered_json keys = nlohmann::ordered_json::array();
    for (const auto& key : entry.path) {
      keys.push_back({{"key", key.key}, {"key_type", static_cast<int>(key.type)}});
    }
    nlohmann::ordered_json value;
    value["value_type"] = entry.value_type;
    value["skip_deserialize"] = entry.skip_deserialize;
    if (entry.write_shape) value["write_shape"] = *entry.write_shape;
    tree[PythonKeyTupleRepr(entry.path)] = {{"key_metadata", keys}, {"value_metadata", value}};
  }
  nlohmann::ordered_json doc;
  doc["tree_metadata"] = tree;
  if (m.use_ocdbt) doc["use_ocdbt"] = *m.use_ocdbt;
  if (m.use_zarr3) doc["use_zarr3"] = *m.use_zarr3;
  doc["store_array_data_equal_to_fill_value"] = m.store_array_data_equal_to_fill_value;
  doc["custom_metadata"] = nlohmann::ordered_json(m.custom_metadata);
  return PythonJsonDumps(doc);
}

// A function-try-block: nlohmann::json's accessors throw its own exceptions (type_error) when a field has an
// unexpected type, which is corrupt metadata like any other.
TreeMetadata DecodeTreeMetadata(std::string_view text, const std::string& what) try {
  auto doc = ParseOrderedJson(text, what);
  if (!doc.is_object() || !doc.contains("tree_metadata") || !doc["tree_metadata"].is_object()) {
    throw CorruptionError(what + " has no \"tree_metadata\" object");
  }
  TreeMetadata m;
  for (const auto& [repr, node] : doc["tree_metadata"].items()) {
    const std::string where = what + ": entry " + repr;
    if (!node.is_object() || !node.contains("key_metadata") || !node["key_metadata"].is_array()) {
      throw CorruptionError(where + " has no \"key_metadata\" list");
    }
    TreeMetadataEntry entry;
    for (const auto& key : node["key_metadata"]) {
      if (!key.is_object() || !key.contains("key") || !key["key"].is_string()) {
        throw CorruptionError(where + " has a key without a string \"key\"");
      }
      // Compared as JSON before converting: a float such as 1e300 converted to int is undefined behaviour.
      const auto key_type = key.value("key_type", nlohmann::ordered_json(2));
      if (!key_type.is_number() || (key_type != 1 && key_type != 2)) {
        throw CorruptionError(where + " has key_type " + key_type.dump());
      }
      const int type = key_type.get<int>();
      entry.path.push_back({key["key"].get<std::string>(), static_cast<KeyType>(type)});
    }
    const auto value = node.value("value_metadata", nlohmann::ordered_json::object());
    if (!value.is_object() || !value.contains("value_type") || !value["value_type"].is_string()) {
      throw CorruptionError(where + " has no \"value_type\"");
    }
    entry.value_type = value["value_type"].get<std::string>();
    entry.skip_deserialize = value.value("skip_deserialize", false);
    if (value.contains("write_shape") && value["write_shape"].is_array()) {
      Shape shape;
      for (const auto& dim : value["write_shape"]) {
        if (!dim.is_number_integer() || dim.get<int64_t>() < 0) throw CorruptionError(where + " has a bad write_shape");
        shape.push_back(dim.get<int64_t>());
      }
      entry.write_shape = shape;
    }
    m.entries.push_back(std::move(entry));
  }
  if (doc.contains("use_ocdbt") && doc["use_ocdbt"].is_boolean()) m.use_ocdbt = doc["use_ocdbt"].get<bool>();
  if (doc.contains("use_zarr3") && doc["use_zarr3"].is_boolean()) m.use_zarr3 = doc["use_zarr3"].get<bool>();
  m.store_array_data_equal_to_fill_value = doc.value("store_array_data_equal_to_fill_value", true);
  if (doc.contains("custom_metadata")) m.custom_metadata = nlohmann::json(doc["custom_metadata"]);
  return m;
} catch (const nlohmann::json::exception& e) {
  throw CorruptionError(what + ": " + e.what());
}

bool IsEmptyNodeType(const std::string& t) {
  return t == kEmptyDict || t == kEmptyList || t == kEmptyTuple || t == kNone || t == "NamedTuple";
}

Tree EmptyNodeValue(const std::string& t) {
  if (t == kEmptyDict) return Tree::Dict({});
  if (t == kEmptyList) return Tree::List({});
  if (t == kEmptyTuple || t == "NamedTuple") return Tree::Tuple({});
  return Tree::None();
}

Tree TreeFromMetadata(const TreeMetadata& m, const std::function<Tree(const TreeMetadataEntry&)>& leaf) {
  std::vector<std::pair<KeyPath, Tree>> leaves;
  leaves.reserve(m.entries.size());
  for (const auto& entry : m.entries) {
    leaves.emplace_back(entry.path, IsEmptyNodeType(entry.value_type) ? EmptyNodeValue(entry.value_type)
                                                                      : leaf(entry));
  }
  if (leaves.size() == 1 && leaves[0].first.empty()) return leaves[0].second;
  return Tree::FromFlat(leaves);
}

}  // namespace cairn::metadata
