// The default FileSystem: POSIX calls, each failure an IoError naming the path.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "cairn/error.h"
#include "cairn/file_system.h"
#include "io/posix_file_system.h"

namespace cairn {
namespace {

[[noreturn]] void ThrowErrno(const std::string& what, const std::filesystem::path& path, int error_number) {
  std::string message = what + " " + path.string();
  if (error_number == ENOENT) throw NotFoundError(message + ": no such file or directory");
  if (error_number == EEXIST) throw AlreadyExistsError(message + ": already exists");
  throw IoError(message, error_number);
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  void Append(std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        ThrowErrno("write", path_, errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
  }
  void Sync() override {
    if (::fdatasync(fd_) != 0) ThrowErrno("fsync", path_, errno);
  }
  void Close() override {
    if (fd_ < 0) return;
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) ThrowErrno("close", path_, errno);
  }

 private:
  std::filesystem::path path_;
  int fd_;
};

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(std::filesystem::path path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~PosixReadableFile() override { ::close(fd_); }
  uint64_t Size() const override { return size_; }
  void ReadAt(uint64_t offset, size_t length, char* out) const override {
    if (offset > size_ || length > size_ - offset) {
      throw CorruptionError("read past the end of " + path_.string() + ": " + std::to_string(length) +
                            " bytes at offset " + std::to_string(offset) + " of a " + std::to_string(size_) +
                            "-byte file");
    }
    while (length > 0) {
      ssize_t n = ::pread(fd_, out, length, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        ThrowErrno("read", path_, errno);
      }
      if (n == 0) throw CorruptionError("unexpected end of file in " + path_.string());
      out += n;
      offset += static_cast<uint64_t>(n);
      length -= static_cast<size_t>(n);
    }
  }

 private:
  std::filesystem::path path_;
  int fd_;
  uint64_t size_;
};

class PosixFileSystem final : public FileSystem {
 public:
  std::optional<FileInfo> Stat(const std::filesystem::path& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
      ThrowErrno("stat", path, errno);
    }
    return FileInfo{S_ISDIR(st.st_mode), static_cast<uint64_t>(st.st_size)};
  }

  std::optional<FileInfo> StatNoFollow(const std::filesystem::path& path) override {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
      ThrowErrno("stat", path, errno);
    }
    return FileInfo{S_ISDIR(st.st_mode), static_cast<uint64_t>(st.st_size), S_ISLNK(st.st_mode)};
  }

  void SetPermissions(const std::filesystem::path& path, uint32_t mode) override {
    if (::chmod(path.c_str(), mode) != 0) ThrowErrno("chmod", path, errno);
  }

  void CreateDir(const std::filesystem::path& path, std::optional<uint32_t> mode) override {
    if (::mkdir(path.c_str(), mode.value_or(0777)) != 0) ThrowErrno("mkdir", path, errno);
    // mkdir applies the umask; an explicit mode (FileOptions.path_permission_mode) is meant exactly.
    if (mode && ::chmod(path.c_str(), *mode) != 0) ThrowErrno("chmod", path, errno);
  }

  std::unique_ptr<WritableFile> NewWritableFile(const std::filesystem::path& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) ThrowErrno("open for writing", path, errno);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  std::unique_ptr<ReadableFile> OpenForRead(const std::filesystem::path& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) ThrowErrno("open", path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int error_number = errno;
      ::close(fd);
      ThrowErrno("stat", path, error_number);
    }
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      throw InvalidArgumentError(path.string() + " is a directory, not a file");
    }
    return std::make_unique<PosixReadableFile>(path, fd, static_cast<uint64_t>(st.st_size));
  }

  std::vector<std::string> ListDir(const std::filesystem::path& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) ThrowErrno("list directory", path, errno);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* entry = ::readdir(dir)) {
      std::string_view name = entry->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    int error_number = errno;
    ::closedir(dir);
    if (error_number != 0) ThrowErrno("list directory", path, error_number);
    std::sort(names.begin(), names.end());
    return names;
  }

  void Rename(const std::filesystem::path& from, const std::filesystem::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) ThrowErrno("rename " + from.string() + " to", to, errno);
  }

  void RemoveFile(const std::filesystem::path& path) override {
    if (::unlink(path.c_str()) != 0) ThrowErrno("remove", path, errno);
  }

  void RemoveEmptyDir(const std::filesystem::path& path) override {
    if (::rmdir(path.c_str()) != 0) ThrowErrno("remove directory", path, errno);
  }

  void SyncDir(const std::filesystem::path& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) ThrowErrno("open directory", path, errno);
    int rc = ::fsync(fd);
    int error_number = errno;
    ::close(fd);
    if (rc != 0) ThrowErrno("fsync directory", path, error_number);
  }
};

}  // namespace

namespace io {

std::shared_ptr<FileSystem> PosixFileSystemInstance() {
  static std::shared_ptr<FileSystem> instance = std::make_shared<PosixFileSystem>();
  return instance;
}

}  // namespace io

}  // namespace cairn
