// cairn's per-process directories in an item (`cairn_checksums/`, `cairn_delta/`): one `process_<i>` file per
// process that saved, each read and decoded the same way; the callers merge the parts as their format says.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cairn/file_system.h"

namespace cairn::metadata {

// The item-relative paths of the files in `item_dir/subdir` ("cairn_checksums/process_0", ...), in listing order;
// empty when there is no such directory.
std::vector<std::string> ProcessFiles(FileSystem& fs, const std::filesystem::path& item_dir, const std::string& subdir);

// One of them, read without following links, at most kMaxChecksumFileBytes (checksums.h).
std::string ReadProcessFile(FileSystem& fs, const std::filesystem::path& item_dir, const std::string& relative);

// Each of those files, read by ReadProcessFile and decoded by `decode(text, what)`, `what` being its path for messages.
template <typename Decode>
auto ReadProcessFiles(FileSystem& fs, const std::filesystem::path& item_dir, const std::string& subdir,
                      Decode&& decode) {
  std::vector<decltype(decode(std::string(), std::string()))> parts;
  for (const std::string& relative : ProcessFiles(fs, item_dir, subdir)) {
    parts.push_back(decode(ReadProcessFile(fs, item_dir, relative), (item_dir / relative).string()));
  }
  return parts;
}

}  // namespace cairn::metadata
