// FileSystem helpers, written only in terms of the virtual calls so that a wrapping FileSystem sees them all.
#include "cairn/error.h"
#include "cairn/file_system.h"

namespace cairn {

bool FileSystem::Exists(const std::filesystem::path& path) { return Stat(path).has_value(); }

bool FileSystem::IsDirectory(const std::filesystem::path& path) {
  auto info = Stat(path);
  return info && info->is_directory;
}

void FileSystem::CreateDirs(const std::filesystem::path& path, std::optional<uint32_t> mode) {
  if (path.empty()) return;
  if (auto info = Stat(path)) {
    if (!info->is_directory) throw AlreadyExistsError(path.string() + " exists and is not a directory");
    return;
  }
  if (path.has_parent_path() && path.parent_path() != path) CreateDirs(path.parent_path(), mode);
  try {
    CreateDir(path, mode);
  } catch (const AlreadyExistsError&) {
    if (!IsDirectory(path)) throw;  // lost a race with another creator: fine when it made a directory
  }
}

namespace {

std::string ReadWhole(const ReadableFile& file, const std::filesystem::path& path, uint64_t max_bytes) {
  const uint64_t size = file.Size();
  if (size > max_bytes) {
    throw CorruptionError(path.string() + " is " + std::to_string(size) + " bytes, more than the " +
                          std::to_string(max_bytes) + " it can hold: it is not the file that was saved");
  }
  std::string data(size, '\0');
  if (!data.empty()) file.ReadAt(0, data.size(), data.data());
  return data;
}

}  // namespace

std::unique_ptr<ReadableFile> FileSystem::OpenForReadBelow(const std::filesystem::path& root,
                                                           const std::filesystem::path& relative) {
  RequireRelativeBelow(relative);
  return OpenForRead(root / relative);
}

void FileSystem::HardLink(const std::filesystem::path& existing, const std::filesystem::path& link) {
  throw UnimplementedError("cannot link " + link.string() + " to " + existing.string() +
                           ": this file system has no hard links");
}

void FileSystem::CopyFile(const std::filesystem::path& existing, const std::filesystem::path& destination) {
  throw UnimplementedError("cannot copy " + existing.string() + " to " + destination.string() +
                           ": this file system has no server-side copy");
}

FileSystem::FileSharing FileSystem::HowFilesAreShared(const std::filesystem::path& path) {
  if (SupportsHardLinks(path)) return FileSharing::kHardLink;
  if (SupportsServerSideCopy(path)) return FileSharing::kServerSideCopy;
  return FileSharing::kNone;
}

void FileSystem::ShareFile(const std::filesystem::path& existing, const std::filesystem::path& destination) {
  switch (HowFilesAreShared(destination)) {
    case FileSharing::kHardLink:
      return HardLink(existing, destination);
    case FileSharing::kServerSideCopy:
      return CopyFile(existing, destination);
    case FileSharing::kNone:
      break;
  }
  throw UnimplementedError("cannot share " + existing.string() + " as " + destination.string() +
                           ": this file system has neither hard links nor a server-side copy");
}

void FileSystem::RequireRelativeBelow(const std::filesystem::path& relative) {
  bool ok = !relative.empty() && relative.is_relative();
  for (const auto& part : relative) ok = ok && part != ".." && part != ".";
  if (!ok) throw InvalidArgumentError("'" + relative.string() + "' is not a plain relative path below a directory");
}

std::string FileSystem::ReadFile(const std::filesystem::path& path, uint64_t max_bytes) {
  return ReadWhole(*OpenForRead(path), path, max_bytes);
}

std::string FileSystem::ReadFileBelow(const std::filesystem::path& root, const std::filesystem::path& relative,
                                      uint64_t max_bytes) {
  return ReadWhole(*OpenForReadBelow(root, relative), root / relative, max_bytes);
}

void FileSystem::WriteFile(const std::filesystem::path& path, std::string_view data, bool sync) {
  auto file = NewWritableFile(path);
  file->Append(data);
  if (sync) file->Sync();
  file->Close();
}

void FileSystem::RemoveAll(const std::filesystem::path& path) {
  // StatNoFollow: a link to a directory outside (planted in a checkpoint, or a step directory that is a link) is
  // unlinked; following it would delete what it points to.
  auto info = StatNoFollow(path);
  if (!info) return;
  if (!info->is_directory) {
    RemoveFile(path);
    return;
  }
  for (const auto& name : ListDir(path)) RemoveAll(path / name);
  RemoveEmptyDir(path);
}

}  // namespace cairn
