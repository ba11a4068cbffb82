// Helpers shared by the OCDBT tests.
#pragma once

#include <zstd.h>

#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/file_system.h"

namespace cairn::kvstore::testing {

// Plain zstd frames (zarr chunk values) decoded with the streaming API: TensorStore's zarr v2 frames carry no size.
inline std::string ZstdDecode(std::string_view frame) {
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  std::string out;
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  size_t ret = 1;
  char buf[4096];
  while (in.pos < in.size || ret != 0) {
    ZSTD_outBuffer ob{buf, sizeof(buf), 0};
    ret = ZSTD_decompressStream(ctx, &ob, &in);
    if (ZSTD_isError(ret)) {
      ZSTD_freeDCtx(ctx);
      throw std::runtime_error(ZSTD_getErrorName(ret));
    }
    out.append(buf, ob.pos);
    if (ob.pos == 0 && in.pos == in.size) break;
  }
  ZSTD_freeDCtx(ctx);
  return out;
}

// Every directory below `root` holding a `manifest.ocdbt`, found through the FileSystem.
inline void FindDatabases(FileSystem& fs, const std::filesystem::path& dir, std::vector<std::filesystem::path>& out) {
  for (const std::string& name : fs.ListDir(dir)) {
    std::filesystem::path path = dir / name;
    if (name == "manifest.ocdbt" && !fs.IsDirectory(path)) out.push_back(dir);
    if (fs.IsDirectory(path)) FindDatabases(fs, path, out);
  }
}

// Files below `dir` (recursively), as paths.
inline void ListFilesRecursive(FileSystem& fs, const std::filesystem::path& dir,
                               std::vector<std::filesystem::path>& out) {
  for (const std::string& name : fs.ListDir(dir)) {
    std::filesystem::path path = dir / name;
    if (fs.IsDirectory(path)) {
      ListFilesRecursive(fs, path, out);
    } else {
      out.push_back(path);
    }
  }
}

inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// A fresh directory on the real file system, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("cairn_ocdbt_test_" + std::to_string(rd()) + std::to_string(rd()));
    FileSystem::Default()->CreateDirs(path_);
  }
  ~TempDir() {
    try {
      FileSystem::Default()->RemoveAll(path_);
    } catch (...) {
    }
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace cairn::kvstore::testing
