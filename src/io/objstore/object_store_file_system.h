// The FileSystem seam over an ObjectStore: `<scheme>://bucket/key` paths, directories as key prefixes with an empty
// `<dir>/` marker object (so an empty directory exists, as the checkpoint code expects), files written in parts and
// made visible whole when closed, reads as ranged GETs. Rename works for single files (copy, then delete) but not
// for directories, and HasAtomicRename says so, which moves the checkpointers to the commit-file protocol.
#pragma once

#include <memory>
#include <string>

#include "cairn/file_system.h"
#include "io/objstore/object_store.h"

namespace cairn::io::objstore {

struct ObjectPath {
  std::string bucket;  // empty for the scheme's root ("s3://")
  std::string key;     // normalised: no leading, trailing or doubled '/'; empty for the bucket's root
};

// Splits "s3://bucket/a/b" (or "s3:/bucket/a/b", what lexically_normal leaves of it) into bucket and key;
// InvalidArgumentError when the path is not of `scheme`.
ObjectPath ParseObjectPath(std::string_view scheme, const std::filesystem::path& path);

// "s3://bucket/a/b" for any spelling of it ("s3:/bucket//a/./b/"), for paths where IsObjectStoreUrl holds.
std::filesystem::path NormalizeObjectUrl(const std::filesystem::path& url);

class ObjectStoreFileSystem final : public FileSystem {
 public:
  explicit ObjectStoreFileSystem(std::unique_ptr<ObjectStore> store) : store_(std::move(store)) {}

  std::optional<FileInfo> Stat(const std::filesystem::path& path) override;
  void CreateDir(const std::filesystem::path& path, std::optional<uint32_t> mode = std::nullopt) override;
  std::unique_ptr<WritableFile> NewWritableFile(const std::filesystem::path& path) override;
  std::unique_ptr<ReadableFile> OpenForRead(const std::filesystem::path& path) override;
  std::vector<std::string> ListDir(const std::filesystem::path& path) override;
  void Rename(const std::filesystem::path& from, const std::filesystem::path& to) override;
  void RemoveFile(const std::filesystem::path& path) override;
  void RemoveEmptyDir(const std::filesystem::path& path) override;
  void SyncDir(const std::filesystem::path& path) override;
  bool HasAtomicRename(const std::filesystem::path&) override { return false; }
  bool HasDirectoryEntries(const std::filesystem::path&) override { return false; }
  // The service's own copy (ObjectStore::Copy): how delta saves share an earlier step's data files here.
  void CopyFile(const std::filesystem::path& existing, const std::filesystem::path& destination) override;
  bool SupportsServerSideCopy(const std::filesystem::path&) override { return true; }
  // One marker put: no parent needs to exist on an object store.
  void CreateDirs(const std::filesystem::path& path, std::optional<uint32_t> mode = std::nullopt) override {
    CreateDir(path, mode);
  }
  // One listing of everything below `path`, then batched deletes.
  void RemoveAll(const std::filesystem::path& path) override;

  ObjectStore& store() { return *store_; }

 private:
  ObjectPath Parse(const std::filesystem::path& path) const { return ParseObjectPath(store_->scheme(), path); }

  std::unique_ptr<ObjectStore> store_;
};

}  // namespace cairn::io::objstore
