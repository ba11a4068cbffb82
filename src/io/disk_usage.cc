#include "io/disk_usage.h"

#include "cairn/error.h"

namespace cairn::io {

uint64_t BytesUnder(FileSystem& fs, const std::filesystem::path& path) {
  try {
    auto info = fs.Stat(path);
    if (!info) return 0;
    if (!info->is_directory) return info->size;
    uint64_t total = 0;
    for (const auto& name : fs.ListDir(path)) total += BytesUnder(fs, path / name);
    return total;
  } catch (const Error&) {
    return 0;  // the directory changed under us
  }
}

}  // namespace cairn::io
