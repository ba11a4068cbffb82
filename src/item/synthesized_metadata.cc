#include "item/synthesized_metadata.h"

#include <set>

#include "metadata/legacy_aggregate.h"

namespace cairn::item {

metadata::TreeMetadata SynthesizeTreeMetadata(kvstore::KvStore& store, const nlohmann::json& strings,
                                              const Tree& aggregate) {
  metadata::TreeMetadata m;
  std::set<std::string> params;
  for (const auto& key : store.ListKeys()) {
    for (const char* suffix : {"/.zarray", "/zarr.json"}) {
      std::string_view s(suffix);
      if (key.size() > s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0) {
        params.insert(key.substr(0, key.size() - s.size()));
      }
    }
  }
  if (!aggregate.is_none()) {
    for (auto& [path, leaf] : aggregate.Flatten()) {
      const bool in_zarr = metadata::IsAggregatePlaceholder(leaf) || params.count(ParamName(path));
      // Held in the file: an array, or a scalar or string (read back as it is, whatever its recorded type).
      const std::string type = in_zarr || leaf.is_array() ? metadata::kNumpyArray : metadata::kScalar;
      if (in_zarr) params.erase(ParamName(path));
      m.entries.push_back({std::move(path), type, /*skip_deserialize=*/!in_zarr, std::nullopt});
    }
  }
  auto path_of = [](const std::string& param) {
    KeyPath path;
    size_t start = 0;
    while (true) {
      size_t dot = param.find('.', start);
      path.push_back({param.substr(start, dot - start), KeyType::kDict});
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return path;
  };
  for (const auto& param : params) m.entries.push_back({path_of(param), metadata::kNumpyArray, false, std::nullopt});
  if (strings.is_object()) {
    for (const auto& [name, value] : strings.items()) {
      m.entries.push_back({path_of(name), metadata::kString, false, std::nullopt});
    }
  }
  return m;
}

}  // namespace cairn::item
