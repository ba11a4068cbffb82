// The one seam through which cairn touches files. Every read, write, rename and fsync goes through a FileSystem,
// so tests can run in memory and fail any single call (LevelDB's Env, narrowed to what checkpoints need).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cairn {

// The most a metadata file (JSON, msgpack, checksums, zarr metadata) may hold. Sizes come from the disk: a 2 GB
// file standing in for `_METADATA` must be refused by its size, not read whole first. Orbax's largest metadata
// files (a `_METADATA` of a model with a million arrays) are a few hundred bytes per array, far below this.
inline constexpr uint64_t kMaxMetadataFileBytes = uint64_t{256} << 20;

// How a save creates files and directories (Orbax's FileOptions).
struct FileOptions {
  // Permission bits for directories a save creates (e.g. 0750); nullopt: the process umask decides.
  std::optional<uint32_t> path_permission_mode;
};

// A file being written from start to end. Errors throw IoError naming the path.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual void Append(std::string_view data) = 0;
  virtual void Sync() = 0;   // fsync: the bytes appended so far are durable once this returns
  virtual void Close() = 0;  // idempotent; the destructor closes (without throwing) if Close was not called
};

// A file opened for positional reads; safe to read from several threads at once.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  virtual uint64_t Size() const = 0;
  // Reads exactly `length` bytes at `offset` into `out`; a short file is a CorruptionError naming the path.
  virtual void ReadAt(uint64_t offset, size_t length, char* out) const = 0;
  // A read-only shared mapping of the `length` bytes at `offset` (lazy restores, RestoreArgs::lazy): the pointer
  // is that byte of the file, which need not be page-aligned; the mapping lasts until the last copy of the
  // pointer is released. Null where this file cannot be mapped (the default: object stores, in-memory and
  // wrapping file systems), for an empty range, or a range not inside the file. As with any file mapping
  // (numpy.memmap), a page read after the file was truncated below it raises SIGBUS.
  virtual std::shared_ptr<const std::byte> MapReadOnly(uint64_t offset, size_t length) const {
    (void)offset;
    (void)length;
    return nullptr;
  }
};

struct FileInfo {
  bool is_directory = false;
  uint64_t size = 0;
  bool is_symlink = false;  // only from StatNoFollow: `path` itself is a symbolic link (is_directory is then false)
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // The process-wide POSIX file system.
  static std::shared_ptr<FileSystem> Default();

  // nullopt when nothing is at `path`. Follows symbolic links.
  virtual std::optional<FileInfo> Stat(const std::filesystem::path& path) = 0;
  // As Stat, but a symbolic link at `path` is reported as one (is_symlink) rather than followed. File systems
  // without links need not override it.
  virtual std::optional<FileInfo> StatNoFollow(const std::filesystem::path& path) { return Stat(path); }
  // Creates one directory; its parent must exist. AlreadyExistsError if `path` exists.
  virtual void CreateDir(const std::filesystem::path& path, std::optional<uint32_t> mode = std::nullopt) = 0;
  // Truncates or creates.
  virtual std::unique_ptr<WritableFile> NewWritableFile(const std::filesystem::path& path) = 0;
  // NotFoundError naming the path when it does not exist. Only a regular file is opened: a directory, FIFO,
  // socket or device is an InvalidArgumentError naming the path, and opening never blocks on what is there (a
  // FIFO with no writer would hang every reader).
  virtual std::unique_ptr<ReadableFile> OpenForRead(const std::filesystem::path& path) = 0;
  // As OpenForRead(root / relative), but no component of `relative` may be a symbolic link (`root`, the caller's,
  // may be one or lie below one): a link planted inside a checkpoint after the walk that refuses links
  // (io/no_symlinks.h) is refused here too, at the moment of use, with a CorruptionError naming it. `relative`
  // must not climb out of `root` (no ".."). File systems without links need not override it.
  virtual std::unique_ptr<ReadableFile> OpenForReadBelow(const std::filesystem::path& root,
                                                         const std::filesystem::path& relative);
  // Names (not paths) of the entries of a directory, sorted.
  virtual std::vector<std::string> ListDir(const std::filesystem::path& path) = 0;
  // Atomic within one file system; replaces an empty directory or a file at `to` as rename(2) does.
  virtual void Rename(const std::filesystem::path& from, const std::filesystem::path& to) = 0;
  virtual void RemoveFile(const std::filesystem::path& path) = 0;
  virtual void RemoveEmptyDir(const std::filesystem::path& path) = 0;
  // Makes the directory's entries (creations, renames) durable.
  virtual void SyncDir(const std::filesystem::path& path) = 0;
  // Sets the permission bits of a file or directory exactly (no umask). File systems without permissions need
  // not override it.
  virtual void SetPermissions(const std::filesystem::path& path, uint32_t mode) { (void)path, (void)mode; }
  // Whether Rename of a directory below `path` is atomic. Object stores (s3://, gs://) answer false: there a
  // checkpoint is written in place and counts once its commit file exists (AtomicityMode::kCommitFile).
  virtual bool HasAtomicRename(const std::filesystem::path& path) { return (void)path, true; }
  // Whether directories below `path` hold real entries, which can be symbolic links and need SyncDir to be
  // durable. Object stores answer false (a directory is a key prefix), so that walks checking for links or syncing
  // every directory, which cost requests there, are skipped.
  virtual bool HasDirectoryEntries(const std::filesystem::path& path) { return (void)path, true; }
  // Makes `link` a second name of the existing regular file `existing` (link(2)): both names then share the same
  // bytes, and removing either leaves the other whole. AlreadyExistsError when `link` exists. File systems without
  // hard links (object stores) throw UnimplementedError; delta saves (SaveOptions::delta_base) ask
  // HowFilesAreShared first and refuse before writing anything when there is no way.
  virtual void HardLink(const std::filesystem::path& existing, const std::filesystem::path& link);
  virtual bool SupportsHardLinks(const std::filesystem::path& path) { return (void)path, false; }
  // Makes `destination` an independent copy of the existing file `existing` without the bytes passing through this
  // process (an object store's server-side copy: S3 CopyObject / UploadPartCopy, GCS objects.rewrite). Replaces
  // what is at `destination`; removing `existing` afterwards leaves the copy whole. File systems without such a copy
  // throw UnimplementedError.
  virtual void CopyFile(const std::filesystem::path& existing, const std::filesystem::path& destination);
  virtual bool SupportsServerSideCopy(const std::filesystem::path& path) { return (void)path, false; }

  // How a file of an earlier checkpoint can become a file of a new one below `path` without being rewritten by
  // this process (delta saves, docs/format.md "Delta steps"): a hard link where the file system has them, else a
  // server-side copy, else not at all.
  enum class FileSharing { kNone, kHardLink, kServerSideCopy };
  FileSharing HowFilesAreShared(const std::filesystem::path& path);
  // Shares `existing` as `destination` the way HowFilesAreShared(destination) says; UnimplementedError for kNone.
  void ShareFile(const std::filesystem::path& existing, const std::filesystem::path& destination);

  // Helpers built on the calls above, so that a fault-injecting FileSystem sees every underlying call.
  bool Exists(const std::filesystem::path& path);
  bool IsDirectory(const std::filesystem::path& path);
  // Creates `path` and its missing parents. Virtual so that an object store, which needs no parents, can make it
  // one request.
  virtual void CreateDirs(const std::filesystem::path& path, std::optional<uint32_t> mode = std::nullopt);
  // The whole file; a file of more than `max_bytes` is a CorruptionError naming it, raised before anything is
  // allocated. Metadata readers keep the default; readers of chunks pass what the chunk can hold.
  std::string ReadFile(const std::filesystem::path& path, uint64_t max_bytes = kMaxMetadataFileBytes);
  // ReadFile through OpenForReadBelow: a file inside a checkpoint, reached without following a link.
  std::string ReadFileBelow(const std::filesystem::path& root, const std::filesystem::path& relative,
                            uint64_t max_bytes = kMaxMetadataFileBytes);
  // Writes the whole file; with `sync`, fsyncs it before closing.
  void WriteFile(const std::filesystem::path& path, std::string_view data, bool sync = false);
  // Removes `path` and everything below it; nothing there is not an error. Never follows a symbolic link: a
  // link is removed, not what it points to. Virtual so that an object store can list once and delete in batches;
  // the default is built on the calls above.
  virtual void RemoveAll(const std::filesystem::path& path);

 protected:
  // InvalidArgumentError unless `relative` is non-empty, relative, and free of "." and ".." components.
  static void RequireRelativeBelow(const std::filesystem::path& relative);
};

// A FileSystem held entirely in memory, for tests. Thread-safe.
std::shared_ptr<FileSystem> NewInMemoryFileSystem();

}  // namespace cairn
