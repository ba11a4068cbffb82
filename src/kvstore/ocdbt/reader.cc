#include "kvstore/ocdbt/reader.h"

#include <cstring>

#include "core/crc32c.h"
#include "core/thread_pool.h"

#include <algorithm>

#include "cairn/error.h"
#include "cairn/object_store.h"
#include "kvstore/ocdbt/ocdbt.h"

namespace cairn::kvstore {
namespace {

using ocdbt::BtreeNode;
using ocdbt::DataFileId;
using ocdbt::IndirectRef;
using ocdbt::LeafEntry;
using ocdbt::Manifest;
using ocdbt::ManifestKind;

// Node bodies may exceed max_decoded_node_bytes somewhat (TensorStore's split estimate is not exact, and a single
// entry can be larger on its own); beyond this cap a body is treated as corrupt rather than allocated.
constexpr size_t kHardNodeCap = size_t{1} << 30;

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Paths inside a database come from disk: refuse ones that would leave the database directory (an absolute path
// would even replace it when joined).
bool IsSafeRelativePath(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return false;
    start = end + 1;
  }
  return true;
}

bool IsNumberedManifestName(std::string_view name) {
  constexpr std::string_view kPrefix = "manifest.";
  if (name.size() != kPrefix.size() + 16 || !StartsWith(name, kPrefix)) return false;
  return std::all_of(name.begin() + kPrefix.size(), name.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A manifest is a config, a file table and a few dozen references; anything near this size is not one, and is
// refused before it is read into memory.
constexpr uint64_t kMaxManifestFileBytes = uint64_t{64} << 20;

Manifest LoadManifestFile(FileSystem& fs, const std::filesystem::path& dir, const std::string& name) {
  const std::filesystem::path path = dir / name;
  std::unique_ptr<ReadableFile> file;
  try {
    file = fs.OpenForReadBelow(dir, name);
  } catch (const NotFoundError& e) {
    throw NotFoundError("OCDBT manifest " + path.string() + " not found (" + e.what() + ")");
  }
  const uint64_t size = file->Size();
  if (size > kMaxManifestFileBytes) {
    throw CorruptionError("OCDBT manifest " + path.string() + " is implausibly large (" + std::to_string(size) +
                          " bytes)");
  }
  std::string data(size, '\0');
  if (size > 0) file->ReadAt(0, size, data.data());
  return ocdbt::DecodeManifest(data, path.string());
}

}  // namespace

OcdbtReader::OcdbtReader(std::shared_ptr<FileSystem> fs, std::filesystem::path dir, size_t node_cache_bytes)
    : fs_(std::move(fs)), dir_(std::move(dir)), node_cache_(node_cache_bytes) {
  const std::filesystem::path manifest_path = dir_ / kOcdbtManifestFile;
  manifest_ = LoadManifestFile(*fs_, dir_, kOcdbtManifestFile);
  if (manifest_.config.manifest_kind == ManifestKind::kNumbered) {
    // The config-only manifest names no version; the numbered file with the highest generation is current.
    std::string latest;
    for (const std::string& name : fs_->ListDir(dir_)) {
      if (IsNumberedManifestName(name) && name > latest) latest = name;  // fixed-width hex: string order works
    }
    if (!latest.empty()) {
      const std::filesystem::path path = dir_ / latest;
      Manifest numbered = LoadManifestFile(*fs_, dir_, latest);
      if (numbered.config.manifest_kind != ManifestKind::kSingle) {
        throw CorruptionError("OCDBT manifest " + path.string() + " holds no versions");
      }
      ocdbt::Config expected = manifest_.config;
      expected.manifest_kind = ManifestKind::kSingle;
      if (!(numbered.config == expected)) {
        throw CorruptionError("OCDBT manifest " + path.string() + " has a config that differs from " +
                              manifest_path.string());
      }
      manifest_.versions = std::move(numbered.versions);
      manifest_.version_nodes = std::move(numbered.version_nodes);
    }
  }
}

bool OcdbtReader::ReadsInPieces(std::string_view /*key*/) const { return !IsObjectStoreUrl(dir_.native()); }

std::string OcdbtReader::Describe() const { return "ocdbt database at " + dir_.string(); }

std::string OcdbtReader::DescribeKey(std::string_view key) {
  const std::string base = "key '" + std::string(key) + "' in " + Describe();
  try {
    auto found = Find(key);
    if (!found) return base;
    const LeafEntry& entry = found->entry();
    if (std::holds_alternative<std::string>(entry.value)) return base + " (stored inline in a B+tree node)";
    const auto& ref = std::get<IndirectRef>(entry.value);
    return base + " (bytes " + std::to_string(ref.offset) + " to " + std::to_string(ref.offset + ref.length) +
           " of data file " + (dir_ / ref.file.FullPath()).string() + ")";
  } catch (...) {
    return base;
  }
}

void OcdbtReader::Write(std::string_view key, std::string) {
  throw InvalidArgumentError("cannot write key '" + std::string(key) + "': " + Describe() + " is opened read-only");
}

void OcdbtReader::Flush() { throw InvalidArgumentError("cannot flush " + Describe() + ": it is opened read-only"); }

size_t OcdbtReader::MaxDecodedNodeBytes() const {
  uint64_t configured = manifest_.config.max_decoded_node_bytes;
  if (configured == 0) return kHardNodeCap;  // 0 means "no limit" to TensorStore
  return static_cast<size_t>(std::min<uint64_t>(kHardNodeCap, 2 * configured + (uint64_t{4} << 20)));
}

std::shared_ptr<ReadableFile> OcdbtReader::OpenDataFile(const DataFileId& id, std::filesystem::path* path) {
  const std::string relative = id.FullPath();
  if (!IsSafeRelativePath(relative)) {
    throw CorruptionError(Describe() + ": invalid data file path '" + relative + "'");
  }
  *path = dir_ / relative;
  {
    std::lock_guard lock(mu_);
    if (auto it = files_.find(relative); it != files_.end()) return it->second;
  }
  std::shared_ptr<ReadableFile> file;
  try {
    file = fs_->OpenForReadBelow(dir_, relative);
  } catch (const NotFoundError& e) {
    throw NotFoundError(Describe() + ": data file " + path->string() + " is missing (" + e.what() + ")");
  }
  std::lock_guard lock(mu_);
  return files_.emplace(relative, std::move(file)).first->second;  // a racing opener's file wins; both are fine
}

std::string OcdbtReader::ReadData(const IndirectRef& ref, uint64_t offset, uint64_t length, const char* what) {
  std::filesystem::path path;
  auto file = OpenDataFile(ref.file, &path);
  const uint64_t size = file->Size();
  // Check against the real file size before allocating: lengths come from disk.
  if (ref.offset > size || offset > size - ref.offset || length > size - ref.offset - offset) {
    throw CorruptionError(path.string() + ": " + what + " at offset " + std::to_string(ref.offset + offset) +
                          " with length " + std::to_string(length) + " runs past the end of the " +
                          std::to_string(size) + "-byte file");
  }
  std::string out(length, '\0');
  if (length > 0) file->ReadAt(ref.offset + offset, length, out.data());
  return out;
}

std::shared_ptr<const BtreeNode> OcdbtReader::ReadNode(const IndirectRef& ref, uint8_t height,
                                                       std::string_view inclusive_min) {
  const std::string context = "B+tree node in " + (dir_ / ref.file.FullPath()).string() + " at offset " +
                              std::to_string(ref.offset);
  // Keyed by the exact reference: the checks below still run on every use, whatever path led here.
  const std::string cache_key = ref.file.FullPath() + '\0' + std::to_string(ref.offset) + '\0' +
                                std::to_string(ref.length) + '\0' + ref.file.base_path;
  std::shared_ptr<const BtreeNode> node = node_cache_.Get(cache_key);
  if (!node) {
    // An encoded node is at most its decoded size plus zstd's worst-case expansion and the envelope; a longer
    // reference is corrupt and must not make us allocate its length.
    const uint64_t max_encoded = MaxDecodedNodeBytes() + MaxDecodedNodeBytes() / 128 + (uint64_t{1} << 16);
    if (ref.length > max_encoded) {
      throw CorruptionError(context + ": node length " + std::to_string(ref.length) + " exceeds the limit of " +
                            std::to_string(max_encoded));
    }
    std::string encoded = ReadData(ref, 0, ref.length, "B+tree node");
    // The node's own references inherit the base path of the file it came from.
    node = std::make_shared<const BtreeNode>(
        ocdbt::DecodeBtreeNode(encoded, ref.file.base_path, MaxDecodedNodeBytes(), context));
    node_cache_.Put(cache_key, node);
  }
  if (node->height != height) {
    throw CorruptionError(context + ": height " + std::to_string(node->height) + ", expected " +
                          std::to_string(height));
  }
  std::string_view first =
      height == 0 ? std::string_view(node->leaf_entries.front().key) : node->interior_entries.front().key;
  if (first < inclusive_min) throw CorruptionError(context + ": first key is below its parent's bound");
  return node;
}

std::shared_ptr<const BtreeNode> OcdbtReader::Root() {
  const ocdbt::VersionRef* version = latest_version();
  if (version == nullptr || version->root.IsMissing()) return nullptr;
  {
    std::lock_guard lock(mu_);
    if (root_) return root_;
  }
  auto root = ReadNode(version->root, version->root_height, {});
  std::lock_guard lock(mu_);
  if (!root_) root_ = std::move(root);
  return root_;
}

std::optional<OcdbtReader::Found> OcdbtReader::Find(std::string_view key) {
  std::shared_ptr<const BtreeNode> node = Root();
  if (!node) return std::nullopt;
  std::string_view rest = key;  // the key relative to the current node
  while (node->height > 0) {
    const auto& entries = node->interior_entries;
    // The child whose inclusive lower bound is the last one <= rest.
    auto it = std::upper_bound(entries.begin(), entries.end(), rest,
                               [](std::string_view k, const ocdbt::InteriorEntry& e) { return k < e.key; });
    if (it == entries.begin()) return std::nullopt;
    const ocdbt::InteriorEntry& e = *std::prev(it);
    // Every key below the child shares its first subtree_common_prefix_length bytes.
    std::string_view common = std::string_view(e.key).substr(0, e.subtree_common_prefix_length);
    if (!StartsWith(rest, common)) return std::nullopt;
    auto child = ReadNode(e.child, static_cast<uint8_t>(node->height - 1),
                          std::string_view(e.key).substr(e.subtree_common_prefix_length));
    rest.remove_prefix(common.size());
    node = std::move(child);  // last: `e` and `common` point into the parent
  }
  const auto& entries = node->leaf_entries;
  auto it = std::lower_bound(entries.begin(), entries.end(), rest,
                             [](const LeafEntry& e, std::string_view k) { return e.key < k; });
  if (it == entries.end() || it->key != rest) return std::nullopt;
  return Found{node, static_cast<size_t>(it - entries.begin())};
}

std::optional<std::string> OcdbtReader::Read(std::string_view key, uint64_t max_bytes) {
  auto found = Find(key);
  if (!found) return std::nullopt;
  const LeafEntry& entry = found->entry();
  if (entry.value_length() > max_bytes) {
    throw CorruptionError("value of key '" + std::string(key) + "' in " + Describe() + " holds " +
                          std::to_string(entry.value_length()) + " bytes, more than the " + std::to_string(max_bytes) +
                          " it can hold");
  }
  if (auto* value = std::get_if<std::string>(&entry.value)) return *value;
  const auto& ref = std::get<IndirectRef>(entry.value);
  return ReadData(ref, 0, ref.length, "value");
}

std::optional<std::string> OcdbtReader::ReadRange(std::string_view key, uint64_t offset, uint64_t length) {
  auto found = Find(key);
  if (!found) return std::nullopt;
  const LeafEntry& entry = found->entry();
  const uint64_t size = entry.value_length();
  if (offset > size || length > size - offset) {
    throw InvalidArgumentError("range [" + std::to_string(offset) + ", +" + std::to_string(length) +
                               ") is outside the " + std::to_string(size) + "-byte value of key '" +
                               std::string(key) + "' in " + Describe());
  }
  if (auto* value = std::get_if<std::string>(&entry.value)) return value->substr(offset, length);
  return ReadData(std::get<IndirectRef>(entry.value), offset, length, "value");
}

std::optional<KvStore::SizedRange> OcdbtReader::ReadRangeUpTo(std::string_view key, uint64_t offset,
                                                              uint64_t length) {
  auto found = Find(key);
  if (!found) return std::nullopt;
  const LeafEntry& entry = found->entry();
  const uint64_t size = entry.value_length();
  if (offset >= size) return SizedRange{"", size};
  length = std::min(length, size - offset);
  if (auto* value = std::get_if<std::string>(&entry.value)) return SizedRange{value->substr(offset, length), size};
  return SizedRange{ReadData(std::get<IndirectRef>(entry.value), offset, length, "value"), size};
}

namespace {

// A large value is read as several pieces in parallel: one thread's pread, and the page faults of the fresh
// memory it lands in, would otherwise bound a restore well below what the page cache or the disk deliver.
// With `crc`, each piece is checksummed a cache-sized block at a time right after the block is read, and the
// pieces' CRCs are joined: checking the bytes then costs no second trip through memory.
// On an object store (`remote`) every ReadAt is a request, which costs far more than a second pass through
// memory: each piece is then read whole and checksummed after.
void ReadInPieces(const ReadableFile& file, uint64_t offset, size_t size, char* out, uint32_t* crc, bool remote) {
  constexpr size_t kPiece = size_t{8} << 20;
  const size_t kCacheBlock = remote ? kPiece : size_t{512} << 10;
  auto read_piece = [&](size_t begin, size_t length) {
    if (!crc) {
      file.ReadAt(offset + begin, length, out + begin);
      return uint32_t{0};
    }
    uint32_t piece_crc = 0;
    for (size_t done = 0; done < length; done += kCacheBlock) {
      const size_t n = std::min(kCacheBlock, length - done);
      file.ReadAt(offset + begin + done, n, out + begin + done);
      piece_crc = Crc32c(std::string_view(out + begin + done, n), piece_crc);
    }
    return piece_crc;
  };
  if (size <= 2 * kPiece) {
    const uint32_t whole = size ? read_piece(0, size) : 0;
    if (crc) *crc = whole;
    return;
  }
  const size_t pieces = (size + kPiece - 1) / kPiece;
  std::vector<uint32_t> piece_crcs(pieces);
  ParallelFor(pieces, [&](size_t i) {
    const size_t begin = i * kPiece, length = std::min(kPiece, size - begin);
    piece_crcs[i] = read_piece(begin, length);
  });
  if (crc) {
    uint32_t joined = piece_crcs[0];
    for (size_t i = 1; i < pieces; ++i) joined = Crc32cCombine(joined, piece_crcs[i], std::min(kPiece, size - i * kPiece));
    *crc = joined;
  }
}

}  // namespace

bool OcdbtReader::ReadInto(std::string_view key, char* out, size_t size, uint32_t* crc32c) {
  auto found = Find(key);
  if (!found) return false;
  const LeafEntry& entry = found->entry();
  if (entry.value_length() != size) {
    throw CorruptionError("value of key '" + std::string(key) + "' in " + Describe() + " holds " +
                          std::to_string(entry.value_length()) + " bytes, expected " + std::to_string(size));
  }
  if (auto* value = std::get_if<std::string>(&entry.value)) {
    if (size) std::memcpy(out, value->data(), size);
    if (crc32c) *crc32c = Crc32c(*value);
    return true;
  }
  const IndirectRef& ref = std::get<IndirectRef>(entry.value);
  std::filesystem::path path;
  auto file = OpenDataFile(ref.file, &path);
  if (ref.offset > file->Size() || size > file->Size() - ref.offset) {
    throw CorruptionError(path.string() + ": value of key '" + std::string(key) + "' at offset " +
                          std::to_string(ref.offset) + " with length " + std::to_string(size) +
                          " runs past the end of the " + std::to_string(file->Size()) + "-byte file");
  }
  ReadInPieces(*file, ref.offset, size, out, crc32c, IsObjectStoreUrl(path.native()));
  return true;
}

std::optional<ValueLocation> OcdbtReader::LocateValue(std::string_view key, size_t size) {
  auto found = Find(key);
  if (!found) return std::nullopt;
  const LeafEntry& entry = found->entry();
  if (entry.value_length() != size) {
    throw CorruptionError("value of key '" + std::string(key) + "' in " + Describe() + " holds " +
                          std::to_string(entry.value_length()) + " bytes, expected " + std::to_string(size));
  }
  const IndirectRef* ref = std::get_if<IndirectRef>(&entry.value);
  if (!ref) return std::nullopt;
  std::filesystem::path path;
  auto file = OpenDataFile(ref->file, &path);
  if (ref->offset > file->Size() || size > file->Size() - ref->offset) {
    throw CorruptionError(path.string() + ": value of key '" + std::string(key) + "' at offset " +
                          std::to_string(ref->offset) + " with length " + std::to_string(size) +
                          " runs past the end of the " + std::to_string(file->Size()) + "-byte file");
  }
  return ValueLocation{std::move(file), ref->offset};
}

std::optional<uint64_t> OcdbtReader::ValueSize(std::string_view key) {
  auto found = Find(key);
  if (!found) return std::nullopt;
  return found->entry().value_length();
}

void OcdbtReader::Visit(const std::shared_ptr<const BtreeNode>& node, const std::string& node_prefix,
                        std::string_view prefix, const Visitor& visit, std::set<std::string>& visited) {
  if (node->height == 0) {
    for (const LeafEntry& e : node->leaf_entries) {
      std::string key = node_prefix + e.key;
      if (StartsWith(key, prefix)) {
        visit(key, e);
      } else if (key > prefix) {
        return;  // past every key that starts with `prefix`
      }
    }
    return;
  }
  const auto& entries = node->interior_entries;
  for (size_t i = 0; i < entries.size(); ++i) {
    const ocdbt::InteriorEntry& e = entries[i];
    std::string lower = node_prefix + e.key;  // inclusive lower bound of child i
    if (lower > prefix && !StartsWith(lower, prefix)) return;  // this child and all later ones lie past the prefix
    if (i + 1 < entries.size() && node_prefix + entries[i + 1].key <= prefix) continue;  // wholly before it
    std::string child_prefix = node_prefix + e.key.substr(0, e.subtree_common_prefix_length);
    // The whole subtree shares child_prefix: it can hold matches only if one of the two prefixes extends the other.
    if (!StartsWith(child_prefix, prefix) && !StartsWith(prefix, child_prefix)) continue;
    // A B+tree references each node once. Nodes referenced from several entries would make a DAG whose traversal
    // takes time exponential in its height: a database of a few KiB could keep ListKeys busy forever.
    if (!visited.insert(e.child.file.FullPath() + '\0' + std::to_string(e.child.offset)).second) {
      throw CorruptionError(Describe() + ": B+tree node in " + e.child.file.FullPath() + " at offset " +
                            std::to_string(e.child.offset) + " is referenced more than once");
    }
    auto child = ReadNode(e.child, static_cast<uint8_t>(node->height - 1),
                          std::string_view(e.key).substr(e.subtree_common_prefix_length));
    Visit(child, child_prefix, prefix, visit, visited);
  }
}

void OcdbtReader::ForEach(std::string_view prefix, const Visitor& visit) {
  std::shared_ptr<const BtreeNode> root = Root();
  if (!root) return;
  std::set<std::string> visited;
  Visit(root, "", prefix, visit, visited);
}

std::vector<std::string> OcdbtReader::ListKeys(std::string_view prefix) {
  std::vector<std::string> keys;
  ForEach(prefix, [&](const std::string& key, const LeafEntry&) { keys.push_back(key); });
  return keys;
}

}  // namespace cairn::kvstore
