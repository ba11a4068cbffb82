#include "io/path.h"

#include "cairn/object_store.h"
#include "io/objstore/object_store_file_system.h"

namespace cairn::io {

std::filesystem::path NormalPath(const std::filesystem::path& path) {
  if (IsObjectStoreUrl(path.native())) return objstore::NormalizeObjectUrl(path);
  std::filesystem::path normal = path.lexically_normal();
  if (!normal.has_filename() && normal.has_parent_path()) normal = normal.parent_path();
  return normal;
}

}  // namespace cairn::io
