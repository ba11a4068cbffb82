#include "kvstore/directory_kvstore.h"

#include <algorithm>

#include "cairn/error.h"
#include "cairn/object_store.h"

namespace cairn::kvstore {

DirectoryKvStore::DirectoryKvStore(std::shared_ptr<FileSystem> fs, std::filesystem::path root)
    : fs_(std::move(fs)), root_(std::move(root)) {}

bool DirectoryKvStore::ReadsInPieces(std::string_view /*key*/) const { return !IsObjectStoreUrl(root_.native()); }

std::string DirectoryKvStore::Describe() const { return "directory at " + root_.string(); }

std::string DirectoryKvStore::DescribeKey(std::string_view key) { return "file " + (root_ / std::string(key)).string(); }

void DirectoryKvStore::ValidateKey(std::string_view key) const {
  auto reject = [&](const char* why) {
    throw InvalidArgumentError("invalid key '" + std::string(key) + "' for " + Describe() + ": " + why);
  };
  if (key.empty()) reject("empty");
  if (key.front() == '/') reject("absolute");
  if (key.find('\0') != std::string_view::npos) reject("contains NUL");
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = std::min(key.find('/', start), key.size());
    std::string_view segment = key.substr(start, end - start);
    if (segment.empty()) reject("empty path segment");
    if (segment == "." || segment == "..") reject("'.' or '..' segment");
    start = end + 1;
  }
}

void DirectoryKvStore::EnsureDir(const std::filesystem::path& dir) {
  if (fs_->IsDirectory(dir)) return;
  if (dir.has_parent_path() && dir.parent_path() != dir) EnsureDir(dir.parent_path());
  try {
    fs_->CreateDir(dir);
  } catch (const AlreadyExistsError&) {
    if (!fs_->IsDirectory(dir)) throw;  // another writer created it first: fine if it is a directory
  }
  std::lock_guard lock(mu_);
  dirty_dirs_.insert(dir.parent_path());
  dirty_dirs_.insert(dir);
}

void DirectoryKvStore::Write(std::string_view key, std::string value) {
  ValidateKey(key);
  const std::filesystem::path path = root_ / std::string(key);
  EnsureDir(path.parent_path());
  fs_->WriteFile(path, value, /*sync=*/true);
  std::lock_guard lock(mu_);
  dirty_dirs_.insert(path.parent_path());
}

std::optional<std::string> DirectoryKvStore::Read(std::string_view key, uint64_t max_bytes) {
  ValidateKey(key);
  const std::filesystem::path path = root_ / std::string(key);
  auto info = fs_->Stat(path);
  if (!info || info->is_directory) return std::nullopt;
  try {
    return fs_->ReadFileBelow(root_, std::string(key), max_bytes);
  } catch (const NotFoundError&) {
    return std::nullopt;  // removed between Stat and open
  }
}

std::optional<ValueLocation> DirectoryKvStore::LocateValue(std::string_view key, size_t size) {
  ValidateKey(key);
  auto info = fs_->Stat(root_ / std::string(key));
  if (!info || info->is_directory) return std::nullopt;
  std::shared_ptr<ReadableFile> file;
  try {
    file = fs_->OpenForReadBelow(root_, std::string(key));
  } catch (const NotFoundError&) {
    return std::nullopt;  // removed between Stat and open
  }
  if (file->Size() != size) {
    throw CorruptionError("value of key '" + std::string(key) + "' in " + Describe() + " holds " +
                          std::to_string(file->Size()) + " bytes, expected " + std::to_string(size));
  }
  return ValueLocation{std::move(file), 0};
}

std::optional<uint64_t> DirectoryKvStore::ValueSize(std::string_view key) {
  ValidateKey(key);
  auto info = fs_->StatNoFollow(root_ / std::string(key));
  if (!info || info->is_directory) return std::nullopt;
  return info->size;
}

void DirectoryKvStore::ListRecursive(const std::filesystem::path& dir, const std::string& key_prefix,
                                     std::string_view prefix, std::vector<std::string>& out) {
  for (const std::string& name : fs_->ListDir(dir)) {
    std::string key = key_prefix + name;
    // Only descend where keys with `prefix` can be: the key so far must extend the prefix or be a prefix of it.
    size_t n = std::min(key.size(), prefix.size());
    if (key.compare(0, n, prefix, 0, n) != 0) continue;
    auto info = fs_->StatNoFollow(dir / name);
    if (!info) continue;  // vanished while listing
    if (info->is_symlink) {
      // Never followed: a link could lead out of the store, or in a loop.
      throw CorruptionError((dir / name).string() + " in " + Describe() + " is a symbolic link, which cairn does not follow");
    }
    if (info->is_directory) {
      ListRecursive(dir / name, key + "/", prefix, out);
    } else if (key.size() >= prefix.size()) {
      out.push_back(std::move(key));
    }
  }
}

std::optional<std::string> DirectoryKvStore::ReadRange(std::string_view key, uint64_t offset, uint64_t length) {
  ValidateKey(key);
  const auto path = root_ / std::string(key);
  auto info = fs_->Stat(path);
  if (!info || info->is_directory) return std::nullopt;
  auto file = fs_->OpenForReadBelow(root_, std::string(key));
  if (offset > file->Size() || length > file->Size() - offset) {
    throw InvalidArgumentError("range [" + std::to_string(offset) + ", +" + std::to_string(length) +
                               ") is outside the " + std::to_string(file->Size()) + "-byte file " + path.string());
  }
  std::string out(length, '\0');
  if (length) file->ReadAt(offset, length, out.data());
  return out;
}

std::optional<KvStore::SizedRange> DirectoryKvStore::ReadRangeUpTo(std::string_view key, uint64_t offset,
                                                                   uint64_t length) {
  ValidateKey(key);
  auto info = fs_->Stat(root_ / std::string(key));
  if (!info || info->is_directory) return std::nullopt;
  auto file = fs_->OpenForReadBelow(root_, std::string(key));
  const uint64_t size = file->Size();
  SizedRange out{"", size};
  if (offset < size) {
    out.bytes.resize(std::min(length, size - offset));
    if (!out.bytes.empty()) file->ReadAt(offset, out.bytes.size(), out.bytes.data());
  }
  return out;
}

std::vector<std::string> DirectoryKvStore::ListKeys(std::string_view prefix) {
  std::vector<std::string> keys;
  if (!fs_->IsDirectory(root_)) return keys;
  ListRecursive(root_, "", prefix, keys);
  // Directory order is per level ("a/b" comes after "a.c" in a listing of "a" then "a.c"), so sort once at the end.
  std::sort(keys.begin(), keys.end());
  return keys;
}

void DirectoryKvStore::Flush() {
  std::set<std::filesystem::path> dirs;
  {
    std::lock_guard lock(mu_);
    dirs.swap(dirty_dirs_);
  }
  try {
    for (const auto& dir : dirs) fs_->SyncDir(dir);
  } catch (...) {
    std::lock_guard lock(mu_);
    dirty_dirs_.insert(dirs.begin(), dirs.end());  // keep them for a retry
    throw;
  }
}

}  // namespace cairn::kvstore
