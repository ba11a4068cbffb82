#include "kvstore/directory_kvstore.h"

#include <algorithm>
#include <functional>

#include "cairn/error.h"

namespace cairn::kvstore {

DirectoryKvStore::DirectoryKvStore(std::shared_ptr<FileSystem> fs, std::filesystem::path root)
    : fs_(std::move(fs)), root_(std::move(root)) {}

std::filesystem::path DirectoryKvStore::PathOf(std::string_view key) const {
  if (key.empty() || key.front() == '/' || key.back() == '/' || key.find('\0') != std::string_view::npos) {
    throw InvalidArgumentError("key \"" + std::string(key) + "\" cannot name a file under " + root_.string());
  }
  std::filesystem::path path = root_;
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view segment = key.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") {
      throw InvalidArgumentError("key \"" + std::string(key) + "\" has a segment that would leave " +
                                 root_.string());
    }
    path /= std::string(segment);
    start = end + 1;
  }
  return path;
}

std::optional<std::string> DirectoryKvStore::Read(std::string_view key) {
  auto path = PathOf(key);
  auto info = fs_->Stat(path);
  if (!info || info->is_directory) return std::nullopt;
  return fs_->ReadFile(path);
}

void DirectoryKvStore::Write(std::string_view key, std::string value) {
  auto path = PathOf(key);
  fs_->CreateDirs(path.parent_path());
  fs_->WriteFile(path, value, /*sync=*/true);
  std::lock_guard lock(mu_);
  // The new file's directory and every directory up to the root gained an entry that Flush() must make durable.
  for (auto dir = path.parent_path();; dir = dir.parent_path()) {
    dirty_dirs_.insert(dir);
    if (dir == root_ || !dir.has_relative_path()) break;
  }
}

std::vector<std::string> DirectoryKvStore::ListKeys(std::string_view prefix) {
  std::vector<std::string> keys;
  std::function<void(const std::filesystem::path&, const std::string&)> walk = [&](const auto& dir,
                                                                                  const std::string& rel) {
    for (const auto& name : fs_->ListDir(dir)) {
      std::string key = rel.empty() ? name : rel + "/" + name;
      auto path = dir / name;
      if (fs_->IsDirectory(path)) {
        walk(path, key);
      } else if (key.compare(0, prefix.size(), prefix) == 0) {
        keys.push_back(key);
      }
    }
  };
  if (fs_->IsDirectory(root_)) walk(root_, "");
  std::sort(keys.begin(), keys.end());
  return keys;
}

void DirectoryKvStore::Flush() {
  std::set<std::filesystem::path> dirs;
  {
    std::lock_guard lock(mu_);
    dirs.swap(dirty_dirs_);
  }
  for (const auto& dir : dirs) fs_->SyncDir(dir);
}

std::string DirectoryKvStore::Describe() const { return "directory " + root_.string(); }

}  // namespace cairn::kvstore
