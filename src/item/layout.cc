#include "item/layout.h"

#include <algorithm>

namespace cairn::item {

std::string ProcessFile(int process) { return "process_" + std::to_string(process); }

std::string OcdbtProcessDir(int process) { return kOcdbtProcessPrefix + std::to_string(process); }

bool IsOcdbtProcessDir(const std::string& name) { return name.rfind(kOcdbtProcessPrefix, 0) == 0; }

int ItemLayout::processes() const {
  return ocdbt_processes > 0 ? ocdbt_processes : std::max(array_metadata_files, 1);
}

ItemLayout DetectItemLayout(FileSystem& fs, const std::filesystem::path& dir) {
  ItemLayout layout;
  for (const auto& name : fs.ListDir(dir)) {
    if (IsOcdbtProcessDir(name)) ++layout.ocdbt_processes;
  }
  if (fs.IsDirectory(dir / kArrayMetadatasDir)) {
    layout.array_metadata_files = static_cast<int>(fs.ListDir(dir / kArrayMetadatasDir).size());
  }
  layout.ocdbt = fs.Exists(dir / kOcdbtManifest);
  layout.tree_metadata = fs.Exists(dir / kTreeMetadataFile);
  layout.strings = fs.Exists(dir / kStringsFile);
  const auto aggregate = dir / kLegacyAggregateFile;
  layout.legacy_aggregate = fs.Exists(aggregate) && !fs.IsDirectory(aggregate);
  layout.checksums = fs.IsDirectory(dir / kChecksumsDir);
  layout.delta = fs.IsDirectory(dir / kDeltaDir);
  return layout;
}

}  // namespace cairn::item
