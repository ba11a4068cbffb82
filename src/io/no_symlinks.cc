#include "io/no_symlinks.h"

#include "cairn/error.h"

namespace cairn::io {

void RefuseSymlink(const std::filesystem::path& link, const std::filesystem::path& directory) {
  throw CorruptionError(link.string() + " is a symbolic link inside the checkpoint " + directory.string() +
                        ": cairn never writes links into a checkpoint and does not follow one out of it");
}

namespace {

void Walk(FileSystem& fs, const std::filesystem::path& dir, const std::filesystem::path& checkpoint, int depth) {
  if (depth > 64) throw CorruptionError(dir.string() + ": directories nested implausibly deep in " + checkpoint.string());
  for (const auto& name : fs.ListDir(dir)) {
    const auto path = dir / name;
    const auto info = fs.StatNoFollow(path);
    if (!info) continue;  // removed meanwhile
    if (info->is_symlink) RefuseSymlink(path, checkpoint);
    if (info->is_directory) Walk(fs, path, checkpoint, depth + 1);
  }
}

}  // namespace

void RequireNoSymlinksBelow(FileSystem& fs, const std::filesystem::path& directory) {
  if (fs.HasDirectoryEntries(directory) && fs.IsDirectory(directory)) Walk(fs, directory, directory, 0);
}

void RequireNoSymlinksOnPath(FileSystem& fs, const std::filesystem::path& directory,
                             const std::filesystem::path& relative) {
  if (!fs.HasDirectoryEntries(directory)) return;
  std::filesystem::path path = directory;
  for (const auto& part : relative) {
    path /= part;
    const auto info = fs.StatNoFollow(path);
    if (!info) return;  // missing: the read that follows says so
    if (info->is_symlink) RefuseSymlink(path, directory);
  }
}

}  // namespace cairn::io
