// A KvStore that keeps each key in its own file under a root directory: Orbax's non-OCDBT layout
// (`<item>/<param>/.zarray`, `<item>/<param>/0.0`).
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <set>

#include "cairn/file_system.h"
#include "kvstore/kvstore.h"

namespace cairn::kvstore {

class DirectoryKvStore final : public KvStore {
 public:
  DirectoryKvStore(std::shared_ptr<FileSystem> fs, std::filesystem::path root);

  std::optional<std::string> Read(std::string_view key) override;
  // Writes and fsyncs the file at once, creating its directories.
  void Write(std::string_view key, std::string value) override;
  std::vector<std::string> ListKeys(std::string_view prefix = {}) override;
  // Fsyncs every directory a write created or added to.
  void Flush() override;
  std::string Describe() const override;

 private:
  // Rejects keys that could leave the root: empty segments, "." or "..", a leading '/', NUL.
  std::filesystem::path PathOf(std::string_view key) const;

  std::shared_ptr<FileSystem> fs_;
  std::filesystem::path root_;
  std::mutex mu_;
  std::set<std::filesystem::path> dirty_dirs_;
};

}  // namespace cairn::kvstore
