// The default FileSystem: POSIX calls, each failure an IoError naming the path.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "cairn/error.h"
#include "cairn/file_system.h"
#include "io/no_symlinks.h"
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
  std::shared_ptr<const std::byte> MapReadOnly(uint64_t offset, size_t length) const override {
    if (length == 0 || offset > size_ || length > size_ - offset) return nullptr;
    // mmap takes page-aligned offsets: map from the page holding `offset` and point into it.
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint64_t aligned = offset / page * page;
    const size_t span = static_cast<size_t>(offset - aligned) + length;
    void* base = ::mmap(nullptr, span, PROT_READ, MAP_SHARED, fd_, static_cast<off_t>(aligned));
    if (base == MAP_FAILED) return nullptr;
    std::shared_ptr<const std::byte> mapping(static_cast<const std::byte*>(base),
                                             [span](const std::byte* p) { ::munmap(const_cast<std::byte*>(p), span); });
    return std::shared_ptr<const std::byte>(mapping, mapping.get() + (offset - aligned));
  }

 private:
  std::filesystem::path path_;
  int fd_;
  uint64_t size_;
};

// O_NONBLOCK: opening a FIFO for reading blocks until a writer appears, which may be never; with it the open
// returns at once and the file's type is checked before anything is read.
constexpr int kReadFlags = O_RDONLY | O_NONBLOCK | O_CLOEXEC;

// A descriptor closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

const char* FileTypeName(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

// Throws naming `path` unless `fd` (opened O_NONBLOCK) is a regular file, then clears O_NONBLOCK (it was only for the
// open; regular files ignore it, but say what we mean). Returns the file's size.
uint64_t RequireRegularBlocking(int fd, const std::filesystem::path& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) ThrowErrno("stat", path, errno);
  if (S_ISDIR(st.st_mode)) throw InvalidArgumentError(path.string() + " is a directory, not a file");
  if (!S_ISREG(st.st_mode)) {
    throw CorruptionError(path.string() + " is " + FileTypeName(st.st_mode) +
                          ", not a regular file: cairn reads and writes only regular files");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) ThrowErrno("fcntl", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

// Takes `fd` (opened with kReadFlags; -1 with errno set when the open failed) and makes it a ReadableFile, or
// throws naming `path`: only regular files are read, since a FIFO, socket or device would block or never end.
std::unique_ptr<ReadableFile> FinishOpen(const std::filesystem::path& path, int raw_fd) {
  if (raw_fd < 0) ThrowErrno("open", path, errno);
  Fd fd(raw_fd);
  const uint64_t size = RequireRegularBlocking(fd.get(), path);
  return std::make_unique<PosixReadableFile>(path, fd.release(), size);
}

// An openat of `name` in `dir_fd` (for `path`, below `root`) failed with `error_number`: a link where O_NOFOLLOW
// refused one is named as such, anything else is the errno's error.
[[noreturn]] void ThrowOpenError(int dir_fd, const std::filesystem::path& name, const std::filesystem::path& path,
                                 const std::filesystem::path& root, int error_number) {
  struct stat st;
  if ((error_number == ELOOP || error_number == ENOTDIR) &&
      ::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
    io::RefuseSymlink(path, root);
  }
  ThrowErrno("open", path, error_number);
}

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
    // O_NONBLOCK, as for reads: a FIFO planted where a file is written would block the open until a reader came
    // (with it, the open fails with ENXIO); anything but a regular file is refused before a byte is written.
    Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0666));
    if (fd.get() < 0) ThrowErrno("open for writing", path, errno);
    RequireRegularBlocking(fd.get(), path);
    return std::make_unique<PosixWritableFile>(path, fd.release());
  }

  std::unique_ptr<ReadableFile> OpenForRead(const std::filesystem::path& path) override {
    return FinishOpen(path, ::open(path.c_str(), kReadFlags));
  }

  std::unique_ptr<ReadableFile> OpenForReadBelow(const std::filesystem::path& root,
                                                 const std::filesystem::path& relative) override {
    RequireRelativeBelow(relative);
    // Walk from a descriptor of `root`, one component at a time, refusing links (O_NOFOLLOW) at the moment each is
    // opened: nothing swapped in after an earlier check is followed.
    const std::filesystem::path start = root.empty() ? std::filesystem::path(".") : root;
    Fd dir(::open(start.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0) ThrowErrno("open directory", root, errno);
    std::filesystem::path walked = root;
    const std::filesystem::path name = relative.filename();
    for (const auto& part : relative.parent_path()) {
      walked /= part;
      Fd next(::openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
      if (next.get() < 0) ThrowOpenError(dir.get(), part, walked, root, errno);
      dir = std::move(next);
    }
    const auto path = root / relative;
    const int fd = ::openat(dir.get(), name.c_str(), kReadFlags | O_NOFOLLOW);
    if (fd < 0) ThrowOpenError(dir.get(), name, path, root, errno);
    return FinishOpen(path, fd);
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

  void HardLink(const std::filesystem::path& existing, const std::filesystem::path& link) override {
    if (::link(existing.c_str(), link.c_str()) != 0) {
      if (errno == EEXIST) throw AlreadyExistsError("link " + link.string() + ": already exists");
      ThrowErrno("link " + existing.string() + " as", link, errno);
    }
  }
  bool SupportsHardLinks(const std::filesystem::path&) override { return true; }

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
