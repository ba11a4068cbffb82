#include "io/temporary_path.h"

#include <cctype>

namespace cairn::io {

std::filesystem::path TemporaryPathFor(const std::filesystem::path& final_path) {
  std::filesystem::path clean = final_path.lexically_normal();
  if (!clean.has_filename()) clean = clean.parent_path();
  return clean.parent_path() / (clean.filename().string() + std::string(kTmpSuffix));
}

bool IsTemporaryPath(const std::filesystem::path& path) {
  std::string name = path.lexically_normal().filename().string();
  if (name.empty()) name = path.lexically_normal().parent_path().filename().string();
  auto pos = name.rfind(kTmpSuffix);
  if (pos == std::string::npos) return false;
  std::string_view rest = std::string_view(name).substr(pos + kTmpSuffix.size());
  if (rest.empty()) return true;
  if (rest[0] != '-' || rest.size() == 1) return false;
  for (char c : rest.substr(1)) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

void SyncDirectoryTree(FileSystem& fs, const std::filesystem::path& directory) {
  if (!fs.HasDirectoryEntries(directory)) return;
  for (const auto& name : fs.ListDir(directory)) {
    auto child = directory / name;
    if (fs.IsDirectory(child)) SyncDirectoryTree(fs, child);
  }
  fs.SyncDir(directory);
}

void WriteFileAtomically(FileSystem& fs, const std::filesystem::path& path, const std::filesystem::path& temp,
                         std::string_view data) {
  if (!fs.HasAtomicRename(path.parent_path())) {
    fs.WriteFile(path, data, /*sync=*/true);
    return;
  }
  fs.WriteFile(temp, data, /*sync=*/true);
  fs.Rename(temp, path);
  fs.SyncDir(path.parent_path());
}

}  // namespace cairn::io
