// A FileSystem held in a map, for tests: fast, hermetic, and with rename/sync semantics close to POSIX.
#include <algorithm>
#include <map>
#include <mutex>

#include "cairn/error.h"
#include "cairn/file_system.h"

namespace cairn {
namespace {

using Path = std::filesystem::path;

struct Node {
  bool is_directory = false;
  std::shared_ptr<std::string> contents;  // files only; shared with open readers and writers
};

class InMemoryFileSystem final : public FileSystem {
 public:
  InMemoryFileSystem() { nodes_["/"] = Node{true, nullptr}; }

  std::optional<FileInfo> Stat(const Path& path) override {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(Normal(path));
    if (it == nodes_.end()) return std::nullopt;
    return FileInfo{it->second.is_directory, it->second.contents ? it->second.contents->size() : 0};
  }

  void CreateDir(const Path& path, std::optional<uint32_t>) override {
    std::lock_guard lock(mu_);
    std::string key = Normal(path);
    if (nodes_.count(key)) throw AlreadyExistsError("mkdir " + key + ": already exists");
    RequireParentDir(key, "mkdir");
    nodes_[key] = Node{true, nullptr};
  }

  std::unique_ptr<WritableFile> NewWritableFile(const Path& path) override;

  std::unique_ptr<ReadableFile> OpenForRead(const Path& path) override;

  std::vector<std::string> ListDir(const Path& path) override {
    std::lock_guard lock(mu_);
    std::string key = Normal(path);
    auto it = nodes_.find(key);
    if (it == nodes_.end()) throw NotFoundError("list directory " + key + ": no such file or directory");
    if (!it->second.is_directory) throw IoError("list directory " + key, ENOTDIR);
    std::vector<std::string> names;
    std::string prefix = key == "/" ? "/" : key + "/";
    for (auto child = nodes_.upper_bound(prefix); child != nodes_.end(); ++child) {
      if (child->first.compare(0, prefix.size(), prefix) != 0) break;
      std::string rest = child->first.substr(prefix.size());
      if (!rest.empty() && rest.find('/') == std::string::npos) names.push_back(rest);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  void Rename(const Path& from, const Path& to) override {
    std::lock_guard lock(mu_);
    std::string src = Normal(from), dst = Normal(to);
    auto it = nodes_.find(src);
    if (it == nodes_.end()) throw NotFoundError("rename " + src + ": no such file or directory");
    RequireParentDir(dst, "rename to");
    if (auto existing = nodes_.find(dst); existing != nodes_.end()) {
      if (existing->second.is_directory != it->second.is_directory) throw IoError("rename onto " + dst, EISDIR);
      if (existing->second.is_directory && HasChildren(dst)) throw IoError("rename onto " + dst, ENOTEMPTY);
      nodes_.erase(existing);
    }
    std::vector<std::pair<std::string, Node>> moved;
    std::string prefix = src + "/";
    for (auto child = nodes_.begin(); child != nodes_.end();) {
      if (child->first == src || child->first.compare(0, prefix.size(), prefix) == 0) {
        moved.emplace_back(dst + child->first.substr(src.size()), child->second);
        child = nodes_.erase(child);
      } else {
        ++child;
      }
    }
    for (auto& [key, node] : moved) nodes_[key] = node;
  }

  // The two names share one contents buffer, as two directory entries share one inode.
  void HardLink(const Path& existing, const Path& link) override {
    std::lock_guard lock(mu_);
    std::string src = Normal(existing), dst = Normal(link);
    auto it = nodes_.find(src);
    if (it == nodes_.end()) throw NotFoundError("link " + src + ": no such file or directory");
    if (it->second.is_directory) throw IoError("link " + src, EPERM);
    if (nodes_.count(dst)) throw AlreadyExistsError("link " + dst + ": already exists");
    RequireParentDir(dst, "link");
    nodes_[dst] = it->second;
  }
  bool SupportsHardLinks(const Path&) override { return true; }

  void RemoveFile(const Path& path) override {
    std::lock_guard lock(mu_);
    std::string key = Normal(path);
    auto it = nodes_.find(key);
    if (it == nodes_.end()) throw NotFoundError("remove " + key + ": no such file or directory");
    if (it->second.is_directory) throw IoError("remove " + key, EISDIR);
    nodes_.erase(it);
  }

  void RemoveEmptyDir(const Path& path) override {
    std::lock_guard lock(mu_);
    std::string key = Normal(path);
    auto it = nodes_.find(key);
    if (it == nodes_.end()) throw NotFoundError("remove directory " + key + ": no such file or directory");
    if (!it->second.is_directory) throw IoError("remove directory " + key, ENOTDIR);
    if (HasChildren(key)) throw IoError("remove directory " + key, ENOTEMPTY);
    nodes_.erase(it);
  }

  void SyncDir(const Path& path) override {
    if (!IsDirectory(path)) throw NotFoundError("fsync directory " + Normal(path) + ": no such directory");
  }

 private:
  friend class MemWritableFile;

  static std::string Normal(const Path& path) {
    std::string s = std::filesystem::absolute(path).lexically_normal().string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
  }
  // Requires mu_.
  void RequireParentDir(const std::string& key, const char* what) {
    std::string parent = Path(key).parent_path().string();
    auto it = nodes_.find(parent);
    if (it == nodes_.end()) throw NotFoundError(std::string(what) + " " + key + ": no such file or directory");
    if (!it->second.is_directory) throw IoError(std::string(what) + " " + key, ENOTDIR);
  }
  bool HasChildren(const std::string& key) {
    std::string prefix = key == "/" ? "/" : key + "/";
    auto child = nodes_.upper_bound(prefix);
    return child != nodes_.end() && child->first.compare(0, prefix.size(), prefix) == 0;
  }

  std::mutex mu_;
  std::map<std::string, Node> nodes_;
};

class MemWritableFile final : public WritableFile {
 public:
  MemWritableFile(std::string path, std::shared_ptr<std::string> contents, std::mutex* mu)
      : path_(std::move(path)), contents_(std::move(contents)), mu_(mu) {}
  void Append(std::string_view data) override {
    if (closed_) throw IoError("write " + path_, EBADF);
    std::lock_guard lock(*mu_);
    contents_->append(data);
  }
  void Sync() override {
    if (closed_) throw IoError("fsync " + path_, EBADF);
  }
  void Close() override { closed_ = true; }

 private:
  std::string path_;
  std::shared_ptr<std::string> contents_;
  std::mutex* mu_;
  bool closed_ = false;
};

class MemReadableFile final : public ReadableFile {
 public:
  MemReadableFile(std::string path, std::string contents) : path_(std::move(path)), contents_(std::move(contents)) {}
  uint64_t Size() const override { return contents_.size(); }
  void ReadAt(uint64_t offset, size_t length, char* out) const override {
    if (offset > contents_.size() || length > contents_.size() - offset) {
      throw CorruptionError("read past the end of " + path_ + ": " + std::to_string(length) + " bytes at offset " +
                            std::to_string(offset) + " of a " + std::to_string(contents_.size()) + "-byte file");
    }
    std::copy_n(contents_.data() + offset, length, out);
  }

 private:
  std::string path_;
  std::string contents_;  // a snapshot taken at open, as a reader of a write-once file would see
};

std::unique_ptr<WritableFile> InMemoryFileSystem::NewWritableFile(const Path& path) {
  std::lock_guard lock(mu_);
  std::string key = Normal(path);
  if (auto it = nodes_.find(key); it != nodes_.end() && it->second.is_directory) {
    throw IoError("open for writing " + key, EISDIR);
  }
  RequireParentDir(key, "open for writing");
  auto contents = std::make_shared<std::string>();
  nodes_[key] = Node{false, contents};
  return std::make_unique<MemWritableFile>(key, contents, &mu_);
}

std::unique_ptr<ReadableFile> InMemoryFileSystem::OpenForRead(const Path& path) {
  std::lock_guard lock(mu_);
  std::string key = Normal(path);
  auto it = nodes_.find(key);
  if (it == nodes_.end()) throw NotFoundError("open " + key + ": no such file or directory");
  if (it->second.is_directory) throw InvalidArgumentError(key + " is a directory, not a file");
  return std::make_unique<MemReadableFile>(key, *it->second.contents);
}

}  // namespace

std::shared_ptr<FileSystem> NewInMemoryFileSystem() { return std::make_shared<InMemoryFileSystem>(); }

}  // namespace cairn
