// A KvStore with one file per key: `<root>/<key>`, '/' in a key making subdirectories. This is the layout of a
// non-OCDBT Orbax checkpoint (zarr `<param>/.zarray`, `<param>/0.0`, ...).
//
// Every value is written and fsynced on Write; Flush() fsyncs the directories whose entries changed, so the new
// names are durable too. Keys that could name something outside the root are rejected.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/file_system.h"
#include "kvstore/kvstore.h"

namespace cairn::kvstore {

class DirectoryKvStore final : public KvStore {
 public:
  DirectoryKvStore(std::shared_ptr<FileSystem> fs, std::filesystem::path root);

  using KvStore::Read;
  // nullopt when no file is at the key (a directory is not a value). Files are opened without following links
  // below the root (FileSystem::OpenForReadBelow).
  std::optional<std::string> Read(std::string_view key, uint64_t max_bytes) override;
  // Reads only the range from the file.
  std::optional<std::string> ReadRange(std::string_view key, uint64_t offset, uint64_t length) override;
  // InvalidArgumentError for an empty, absolute or NUL-containing key, or one with an empty, "." or ".." segment.
  std::optional<SizedRange> ReadRangeUpTo(std::string_view key, uint64_t offset, uint64_t length) override;
  std::optional<uint64_t> ValueSize(std::string_view key) override;
  // The key's file, opened as Read opens it.
  std::optional<ValueLocation> LocateValue(std::string_view key, size_t size) override;
  void Write(std::string_view key, std::string value) override;
  // Every file below the root whose key starts with `prefix`, sorted by byte order. A missing root lists nothing.
  std::vector<std::string> ListKeys(std::string_view prefix = {}) override;
  void Flush() override;
  bool ReadsInPieces(std::string_view key) const override;
  std::string Describe() const override;
  std::string DescribeKey(std::string_view key) override;

 private:
  void ValidateKey(std::string_view key) const;
  // Creates `dir` and any missing ancestors, noting each parent whose entries changed.
  void EnsureDir(const std::filesystem::path& dir);
  void ListRecursive(const std::filesystem::path& dir, const std::string& key_prefix, std::string_view prefix,
                     std::vector<std::string>& out);

  const std::shared_ptr<FileSystem> fs_;
  const std::filesystem::path root_;

  std::mutex mu_;
  std::set<std::filesystem::path> dirty_dirs_;  // directories to fsync at Flush
};

}  // namespace cairn::kvstore
