#include "metadata/process_files.h"

#include "metadata/checksums.h"

namespace cairn::metadata {

std::vector<std::string> ProcessFiles(FileSystem& fs, const std::filesystem::path& item_dir, const std::string& subdir) {
  std::vector<std::string> relatives;
  if (!fs.IsDirectory(item_dir / subdir)) return relatives;
  for (const auto& name : fs.ListDir(item_dir / subdir)) relatives.push_back(subdir + "/" + name);
  return relatives;
}

std::string ReadProcessFile(FileSystem& fs, const std::filesystem::path& item_dir, const std::string& relative) {
  return fs.ReadFileBelow(item_dir, relative, kMaxChecksumFileBytes);
}

}  // namespace cairn::metadata
