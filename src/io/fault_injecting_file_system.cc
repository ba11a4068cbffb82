#include "io/fault_injecting_file_system.h"

#include "cairn/error.h"

namespace cairn::io {

const char* FsOpName(FsOp op) {
  switch (op) {
    case FsOp::kStat: return "stat";
    case FsOp::kCreateDir: return "mkdir";
    case FsOp::kOpenWrite: return "open for writing";
    case FsOp::kAppend: return "write";
    case FsOp::kSync: return "fsync";
    case FsOp::kClose: return "close";
    case FsOp::kOpenRead: return "open";
    case FsOp::kRead: return "read";
    case FsOp::kListDir: return "list directory";
    case FsOp::kRename: return "rename";
    case FsOp::kRemoveFile: return "remove";
    case FsOp::kRemoveDir: return "remove directory";
    case FsOp::kSyncDir: return "fsync directory";
    case FsOp::kChmod: return "chmod";
    case FsOp::kLink: return "link";
    case FsOp::kCopy: return "copy";
  }
  return "?";
}

FaultInjectingFileSystem::FaultInjectingFileSystem(std::shared_ptr<FileSystem> base) : base_(std::move(base)) {}

void FaultInjectingFileSystem::FailNth(int64_t n, std::function<bool(FsOp, const std::filesystem::path&)> matches,
                                       int error_number) {
  // Under the lock: background threads (an async save, a background deleter) may be calling MaybeFail meanwhile.
  std::lock_guard lock(mu_);
  matches_ = std::move(matches);
  error_number_ = error_number;
  matched_ = 0;
  fired_ = false;
  target_ = n;
}

void FaultInjectingFileSystem::MaybeFail(FsOp op, const std::filesystem::path& path) {
  int error_number;
  {
    std::lock_guard lock(mu_);
    if (!matches_ || !matches_(op, path)) return;
    if (matched_.fetch_add(1) != target_.load()) return;
    fired_ = true;
    error_number = error_number_;
  }
  throw IoError(std::string("injected fault: ") + FsOpName(op) + " " + path.string(), error_number);
}

namespace {

class FaultyWritableFile final : public WritableFile {
 public:
  FaultyWritableFile(FaultInjectingFileSystem* fs, std::filesystem::path path, std::unique_ptr<WritableFile> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}
  void Append(std::string_view data) override {
    fs_->MaybeFail(FsOp::kAppend, path_);
    base_->Append(data);
  }
  void Sync() override {
    fs_->MaybeFail(FsOp::kSync, path_);
    base_->Sync();
  }
  void Close() override {
    fs_->MaybeFail(FsOp::kClose, path_);
    base_->Close();
  }

 private:
  FaultInjectingFileSystem* fs_;
  std::filesystem::path path_;
  std::unique_ptr<WritableFile> base_;
};

class FaultyReadableFile final : public ReadableFile {
 public:
  FaultyReadableFile(FaultInjectingFileSystem* fs, std::filesystem::path path, std::unique_ptr<ReadableFile> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}
  uint64_t Size() const override { return base_->Size(); }
  void ReadAt(uint64_t offset, size_t length, char* out) const override {
    fs_->MaybeFail(FsOp::kRead, path_);
    base_->ReadAt(offset, length, out);
  }

 private:
  FaultInjectingFileSystem* fs_;
  std::filesystem::path path_;
  std::unique_ptr<ReadableFile> base_;
};

}  // namespace

std::optional<FileInfo> FaultInjectingFileSystem::Stat(const std::filesystem::path& path) {
  MaybeFail(FsOp::kStat, path);
  return base_->Stat(path);
}
std::optional<FileInfo> FaultInjectingFileSystem::StatNoFollow(const std::filesystem::path& path) {
  MaybeFail(FsOp::kStat, path);
  return base_->StatNoFollow(path);
}
void FaultInjectingFileSystem::CreateDir(const std::filesystem::path& path, std::optional<uint32_t> mode) {
  MaybeFail(FsOp::kCreateDir, path);
  base_->CreateDir(path, mode);
}
std::unique_ptr<WritableFile> FaultInjectingFileSystem::NewWritableFile(const std::filesystem::path& path) {
  MaybeFail(FsOp::kOpenWrite, path);
  return std::make_unique<FaultyWritableFile>(this, path, base_->NewWritableFile(path));
}
std::unique_ptr<ReadableFile> FaultInjectingFileSystem::OpenForRead(const std::filesystem::path& path) {
  MaybeFail(FsOp::kOpenRead, path);
  return std::make_unique<FaultyReadableFile>(this, path, base_->OpenForRead(path));
}
std::unique_ptr<ReadableFile> FaultInjectingFileSystem::OpenForReadBelow(const std::filesystem::path& root,
                                                                         const std::filesystem::path& relative) {
  MaybeFail(FsOp::kOpenRead, root / relative);
  return std::make_unique<FaultyReadableFile>(this, root / relative, base_->OpenForReadBelow(root, relative));
}
std::vector<std::string> FaultInjectingFileSystem::ListDir(const std::filesystem::path& path) {
  MaybeFail(FsOp::kListDir, path);
  return base_->ListDir(path);
}
void FaultInjectingFileSystem::Rename(const std::filesystem::path& from, const std::filesystem::path& to) {
  MaybeFail(FsOp::kRename, from);
  base_->Rename(from, to);
}
void FaultInjectingFileSystem::HardLink(const std::filesystem::path& existing, const std::filesystem::path& link) {
  MaybeFail(FsOp::kLink, link);
  base_->HardLink(existing, link);
}
void FaultInjectingFileSystem::CopyFile(const std::filesystem::path& existing,
                                        const std::filesystem::path& destination) {
  MaybeFail(FsOp::kCopy, destination);
  base_->CopyFile(existing, destination);
}
void FaultInjectingFileSystem::RemoveFile(const std::filesystem::path& path) {
  MaybeFail(FsOp::kRemoveFile, path);
  base_->RemoveFile(path);
}
void FaultInjectingFileSystem::RemoveEmptyDir(const std::filesystem::path& path) {
  MaybeFail(FsOp::kRemoveDir, path);
  base_->RemoveEmptyDir(path);
}
void FaultInjectingFileSystem::SyncDir(const std::filesystem::path& path) {
  MaybeFail(FsOp::kSyncDir, path);
  base_->SyncDir(path);
}
void FaultInjectingFileSystem::SetPermissions(const std::filesystem::path& path, uint32_t mode) {
  MaybeFail(FsOp::kChmod, path);
  base_->SetPermissions(path, mode);
}

}  // namespace cairn::io
