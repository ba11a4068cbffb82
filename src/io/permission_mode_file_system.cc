#include "io/permission_mode_file_system.h"

namespace cairn::io {
namespace {

class PermissionModeFileSystem final : public FileSystem {
 public:
  PermissionModeFileSystem(std::shared_ptr<FileSystem> base, uint32_t mode) : base_(std::move(base)), mode_(mode) {}

  std::optional<FileInfo> Stat(const std::filesystem::path& path) override { return base_->Stat(path); }
  std::optional<FileInfo> StatNoFollow(const std::filesystem::path& path) override { return base_->StatNoFollow(path); }
  void CreateDir(const std::filesystem::path& path, std::optional<uint32_t>) override { base_->CreateDir(path, mode_); }
  std::unique_ptr<WritableFile> NewWritableFile(const std::filesystem::path& path) override {
    auto file = base_->NewWritableFile(path);
    base_->SetPermissions(path, FileModeFor(mode_));
    return file;
  }
  std::unique_ptr<ReadableFile> OpenForRead(const std::filesystem::path& path) override {
    return base_->OpenForRead(path);
  }
  std::unique_ptr<ReadableFile> OpenForReadBelow(const std::filesystem::path& root,
                                                 const std::filesystem::path& relative) override {
    return base_->OpenForReadBelow(root, relative);
  }
  std::vector<std::string> ListDir(const std::filesystem::path& path) override { return base_->ListDir(path); }
  void Rename(const std::filesystem::path& from, const std::filesystem::path& to) override { base_->Rename(from, to); }
  void HardLink(const std::filesystem::path& existing, const std::filesystem::path& link) override {
    base_->HardLink(existing, link);
  }
  bool SupportsHardLinks(const std::filesystem::path& path) override { return base_->SupportsHardLinks(path); }
  void CopyFile(const std::filesystem::path& existing, const std::filesystem::path& destination) override {
    base_->CopyFile(existing, destination);
  }
  bool SupportsServerSideCopy(const std::filesystem::path& path) override {
    return base_->SupportsServerSideCopy(path);
  }
  void RemoveFile(const std::filesystem::path& path) override { base_->RemoveFile(path); }
  void RemoveEmptyDir(const std::filesystem::path& path) override { base_->RemoveEmptyDir(path); }
  void SyncDir(const std::filesystem::path& path) override { base_->SyncDir(path); }
  void SetPermissions(const std::filesystem::path& path, uint32_t mode) override { base_->SetPermissions(path, mode); }
  bool HasAtomicRename(const std::filesystem::path& path) override { return base_->HasAtomicRename(path); }
  bool HasDirectoryEntries(const std::filesystem::path& path) override { return base_->HasDirectoryEntries(path); }
  void RemoveAll(const std::filesystem::path& path) override { base_->RemoveAll(path); }
  void CreateDirs(const std::filesystem::path& path, std::optional<uint32_t>) override {
    base_->CreateDirs(path, mode_);
  }

 private:
  std::shared_ptr<FileSystem> base_;
  uint32_t mode_;
};

}  // namespace

std::shared_ptr<FileSystem> WithPermissionMode(std::shared_ptr<FileSystem> base, uint32_t mode) {
  return std::make_shared<PermissionModeFileSystem>(std::move(base), mode);
}

}  // namespace cairn::io
