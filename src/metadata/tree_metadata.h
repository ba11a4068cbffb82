// `_METADATA`: the saved tree's structure and what kind of value sits at each key path.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/tree.h"

namespace cairn::metadata {

inline constexpr const char* kTreeMetadataFile = "_METADATA";

// Orbax's value types (`value_type`).
inline constexpr const char* kJaxArray = "jax.Array";
inline constexpr const char* kNumpyArray = "np.ndarray";
inline constexpr const char* kScalar = "scalar";
inline constexpr const char* kString = "string";
inline constexpr const char* kPlaceholderType = "placeholder";
// Empty nodes (`_src/metadata/empty_values.py`): no data, skip_deserialize true.
inline constexpr const char* kEmptyDict = "Dict";
inline constexpr const char* kEmptyList = "List";
inline constexpr const char* kEmptyTuple = "Tuple";
inline constexpr const char* kNone = "None";

struct TreeMetadataEntry {
  KeyPath path;
  std::string value_type;
  bool skip_deserialize = false;
  std::optional<Shape> write_shape;
};

struct TreeMetadata {
  std::vector<TreeMetadataEntry> entries;  // in the saved tree's flatten order
  std::optional<bool> use_ocdbt;
  std::optional<bool> use_zarr3;
  bool store_array_data_equal_to_fill_value = true;
  nlohmann::json custom_metadata;  // null unless the save gave some
};

std::string EncodeTreeMetadata(const TreeMetadata& metadata);
TreeMetadata DecodeTreeMetadata(std::string_view text, const std::string& what);

// The tree as saved, with every entry's value given by `leaf(entry)`; empty nodes become their empty value.
Tree TreeFromMetadata(const TreeMetadata& metadata, const std::function<Tree(const TreeMetadataEntry&)>& leaf);
// The empty value an empty-node type stands for: {} / [] / () / None.
Tree EmptyNodeValue(const std::string& value_type);
bool IsEmptyNodeType(const std::string& value_type);

}  // namespace cairn::metadata
