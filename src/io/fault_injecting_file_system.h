// A FileSystem that forwards to another and fails the N-th call of a chosen kind, so tests can break a save at
// every step (LevelDB's fault_injection_test, narrowed to what a checkpoint does).
#pragma once

#include <atomic>
#include <cerrno>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "cairn/file_system.h"

namespace cairn::io {

enum class FsOp { kStat, kCreateDir, kOpenWrite, kAppend, kSync, kClose, kOpenRead, kRead, kListDir, kRename,
                  kRemoveFile, kRemoveDir, kSyncDir, kChmod, kLink, kCopy };

const char* FsOpName(FsOp op);

class FaultInjectingFileSystem final : public FileSystem {
 public:
  explicit FaultInjectingFileSystem(std::shared_ptr<FileSystem> base);

  // Fail the `n`-th (0-based) call for which `matches(op, path)` holds, with `error_number`; -1 disarms.
  void FailNth(int64_t n, std::function<bool(FsOp, const std::filesystem::path&)> matches, int error_number = EIO);
  // Calls that matched so far (to size a loop that fails each of them in turn).
  int64_t matched_calls() const { return matched_.load(); }
  bool fired() const { return fired_.load(); }

  std::optional<FileInfo> Stat(const std::filesystem::path& path) override;
  std::optional<FileInfo> StatNoFollow(const std::filesystem::path& path) override;
  void CreateDir(const std::filesystem::path& path, std::optional<uint32_t> mode = std::nullopt) override;
  std::unique_ptr<WritableFile> NewWritableFile(const std::filesystem::path& path) override;
  std::unique_ptr<ReadableFile> OpenForRead(const std::filesystem::path& path) override;
  std::unique_ptr<ReadableFile> OpenForReadBelow(const std::filesystem::path& root,
                                                 const std::filesystem::path& relative) override;
  std::vector<std::string> ListDir(const std::filesystem::path& path) override;
  void Rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  void RemoveFile(const std::filesystem::path& path) override;
  void RemoveEmptyDir(const std::filesystem::path& path) override;
  void SyncDir(const std::filesystem::path& path) override;
  void SetPermissions(const std::filesystem::path& path, uint32_t mode) override;
  void HardLink(const std::filesystem::path& existing, const std::filesystem::path& link) override;
  bool SupportsHardLinks(const std::filesystem::path& path) override { return base_->SupportsHardLinks(path); }
  void CopyFile(const std::filesystem::path& existing, const std::filesystem::path& destination) override;
  bool SupportsServerSideCopy(const std::filesystem::path& path) override {
    return base_->SupportsServerSideCopy(path);
  }
  bool HasAtomicRename(const std::filesystem::path& path) override { return base_->HasAtomicRename(path); }
  bool HasDirectoryEntries(const std::filesystem::path& path) override { return base_->HasDirectoryEntries(path); }

  // Throws the injected IoError when this call is the chosen one.
  void MaybeFail(FsOp op, const std::filesystem::path& path);

 private:
  std::shared_ptr<FileSystem> base_;
  std::mutex mu_;  // guards matches_ and error_number_
  std::function<bool(FsOp, const std::filesystem::path&)> matches_;
  std::atomic<int64_t> target_{-1};
  std::atomic<int64_t> matched_{0};
  std::atomic<bool> fired_{false};
  int error_number_ = EIO;
};

}  // namespace cairn::io
