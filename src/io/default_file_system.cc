// FileSystem::Default(): POSIX for local paths, and for `s3://` and `gs://` paths a file system over the service,
// made on first use from the environment. Routing by path is what lets every API that takes a directory (the
// checkpointers, the manager, the command, the Python module) take a URL too, with no option to set.
#include <mutex>

#include "cairn/error.h"
#include "cairn/file_system.h"
#include "cairn/object_store.h"
#include "io/objstore/object_store_file_system.h"
#include "io/posix_file_system.h"

namespace cairn {
namespace {

class RoutingFileSystem final : public FileSystem {
 public:
  std::optional<FileInfo> Stat(const std::filesystem::path& path) override { return For(path).Stat(path); }
  std::optional<FileInfo> StatNoFollow(const std::filesystem::path& path) override {
    return For(path).StatNoFollow(path);
  }
  void CreateDir(const std::filesystem::path& path, std::optional<uint32_t> mode) override {
    For(path).CreateDir(path, mode);
  }
  std::unique_ptr<WritableFile> NewWritableFile(const std::filesystem::path& path) override {
    return For(path).NewWritableFile(path);
  }
  std::unique_ptr<ReadableFile> OpenForRead(const std::filesystem::path& path) override {
    return For(path).OpenForRead(path);
  }
  std::unique_ptr<ReadableFile> OpenForReadBelow(const std::filesystem::path& root,
                                                 const std::filesystem::path& relative) override {
    return For(root).OpenForReadBelow(root, relative);
  }
  std::vector<std::string> ListDir(const std::filesystem::path& path) override { return For(path).ListDir(path); }
  void Rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    FileSystem& fs = For(from);
    if (&fs != &For(to)) {
      throw UnimplementedError("rename " + from.string() + " to " + to.string() + ": not within one file system");
    }
    fs.Rename(from, to);
  }
  void HardLink(const std::filesystem::path& existing, const std::filesystem::path& link) override {
    FileSystem& fs = For(link);
    if (&fs != &For(existing)) {
      throw UnimplementedError("link " + link.string() + " to " + existing.string() + ": not within one file system");
    }
    fs.HardLink(existing, link);
  }
  bool SupportsHardLinks(const std::filesystem::path& path) override { return For(path).SupportsHardLinks(path); }
  void CopyFile(const std::filesystem::path& existing, const std::filesystem::path& destination) override {
    FileSystem& fs = For(destination);
    if (&fs != &For(existing)) {
      throw UnimplementedError("copy " + existing.string() + " to " + destination.string() +
                               ": not within one file system");
    }
    fs.CopyFile(existing, destination);
  }
  bool SupportsServerSideCopy(const std::filesystem::path& path) override {
    return For(path).SupportsServerSideCopy(path);
  }
  void RemoveFile(const std::filesystem::path& path) override { For(path).RemoveFile(path); }
  void RemoveEmptyDir(const std::filesystem::path& path) override { For(path).RemoveEmptyDir(path); }
  void SyncDir(const std::filesystem::path& path) override { For(path).SyncDir(path); }
  void SetPermissions(const std::filesystem::path& path, uint32_t mode) override {
    For(path).SetPermissions(path, mode);
  }
  bool HasAtomicRename(const std::filesystem::path& path) override { return For(path).HasAtomicRename(path); }
  bool HasDirectoryEntries(const std::filesystem::path& path) override { return For(path).HasDirectoryEntries(path); }
  void RemoveAll(const std::filesystem::path& path) override { For(path).RemoveAll(path); }
  void CreateDirs(const std::filesystem::path& path, std::optional<uint32_t> mode) override {
    For(path).CreateDirs(path, mode);
  }

 private:
  FileSystem& For(const std::filesystem::path& path) {
    const std::string& text = path.native();
    if (text.starts_with("s3:")) return Lazy(s3_, [] { return NewS3FileSystem(); });
    if (text.starts_with("gs:")) return Lazy(gcs_, [] { return NewGcsFileSystem(); });
    return *posix_;
  }

  // Made on first use, so that a program that never touches a bucket never reads cloud credentials. A failure
  // (no credentials) is not remembered: the next call tries again.
  template <typename Make>
  FileSystem& Lazy(std::shared_ptr<FileSystem>& slot, Make make) {
    std::lock_guard lock(mu_);
    if (!slot) slot = make();
    return *slot;
  }

  std::shared_ptr<FileSystem> posix_ = io::PosixFileSystemInstance();
  std::mutex mu_;
  std::shared_ptr<FileSystem> s3_, gcs_;
};

}  // namespace

std::shared_ptr<FileSystem> FileSystem::Default() {
  static std::shared_ptr<FileSystem> instance = std::make_shared<RoutingFileSystem>();
  return instance;
}

bool IsObjectStoreUrl(std::string_view path) { return path.starts_with("s3:/") || path.starts_with("gs:/"); }

std::shared_ptr<FileSystem> NewS3FileSystem(ObjectStoreOptions options) {
  return std::make_shared<io::objstore::ObjectStoreFileSystem>(io::objstore::NewS3Store(std::move(options)));
}

std::shared_ptr<FileSystem> NewGcsFileSystem(ObjectStoreOptions options) {
  return std::make_shared<io::objstore::ObjectStoreFileSystem>(io::objstore::NewGcsStore(std::move(options)));
}

std::optional<ObjectStoreStats> GetObjectStoreStats(FileSystem& fs) {
  if (auto* object_fs = dynamic_cast<io::objstore::ObjectStoreFileSystem*>(&fs)) return object_fs->store().Stats();
  return std::nullopt;
}

}  // namespace cairn
