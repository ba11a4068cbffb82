// A whole OCDBT database, read as a restore reads it: the input is a set of files (see SplitFiles in
// fuzz_util.h: `manifest.ocdbt`, `d/<id>` data files, numbered manifests, `ocdbt.process_0/...` of a merged
// database), written into an in-memory file system with every envelope's CRC repaired. The database is opened
// (OcdbtReader, as OpenOcdbtForRead does), every key is listed, and each is read whole, by range, into a buffer,
// and looked up by prefix.
#include <memory>
#include <string>

#include "cairn/file_system.h"
#include "fuzz_util.h"
#include "kvstore/ocdbt/reader.h"

namespace {

constexpr size_t kMaxFiles = 64;
constexpr size_t kMaxKeysRead = 256;
constexpr size_t kMaxReadIntoBytes = size_t{1} << 20;

// The fuzzer's paths go below /db; ones that would leave it, or that the file system refuses, are skipped.
bool UsablePath(const std::string& path) {
  if (path.empty() || path.size() > 256 || path.front() == '/' || path.back() == '/') return false;
  if (path.find('\0') != std::string::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string segment = path.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto files = cairn::fuzz::SplitFiles(cairn::fuzz::AsBytes(data, size));
  if (files.size() > kMaxFiles) return -1;  // not added to the corpus
  auto fs = cairn::NewInMemoryFileSystem();
  fs->CreateDir("/db");
  for (auto& file : files) {
    if (!UsablePath(file.first)) continue;
    cairn::fuzz::RepairEnvelopesInFile(file.second);
    cairn::fuzz::IgnoreCairnErrors([&] {
      const std::filesystem::path full = std::filesystem::path("/db") / file.first;
      fs->CreateDirs(full.parent_path());
      fs->WriteFile(full, file.second);
    });
  }

  cairn::fuzz::IgnoreCairnErrors([&] {
    cairn::kvstore::OcdbtReader reader(fs, "/db", /*node_cache_bytes=*/size_t{1} << 20);
    std::vector<std::string> keys;
    cairn::fuzz::IgnoreCairnErrors([&] { keys = reader.ListKeys(); });
    if (keys.size() > kMaxKeysRead) keys.resize(kMaxKeysRead);
    for (const std::string& key : keys) {
      cairn::fuzz::IgnoreCairnErrors([&] { reader.Read(key); });
      cairn::fuzz::IgnoreCairnErrors([&] {
        std::optional<uint64_t> value_size = reader.ValueSize(key);
        if (!value_size) return;
        if (*value_size > 0) reader.ReadRange(key, *value_size / 2, *value_size - *value_size / 2);
        if (*value_size <= kMaxReadIntoBytes) {
          std::string buffer(*value_size, '\0');
          reader.ReadInto(key, buffer.data(), buffer.size());
        }
      });
      cairn::fuzz::IgnoreCairnErrors([&] { reader.ListKeys(std::string_view(key).substr(0, key.size() / 2)); });
    }
    cairn::fuzz::IgnoreCairnErrors([&] { reader.Read("a/.zarray"); });  // a key that may be absent
  });
  return 0;
}
