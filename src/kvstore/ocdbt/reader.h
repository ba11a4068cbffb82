// Read-only access to the latest generation of an OCDBT database written by TensorStore/Orbax or by OcdbtWriter.
//
// Opening reads the manifest (single kind, or numbered: `manifest.ocdbt` holding the config plus
// `manifest.<16 hex>` files, the highest being current) and keeps the latest version's root. Read descends the
// B+tree to one leaf; ListKeys visits only the subtrees that can hold the prefix. Data file paths follow the
// transitive base-path rule, so a merged root database reads values from `ocdbt.process_N/d/...`.
//
// Thread-safe: the manifest and root node are immutable once loaded, and the open-file cache is locked.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/file_system.h"
#include "kvstore/kvstore.h"
#include "kvstore/ocdbt/btree_node.h"
#include "kvstore/ocdbt/manifest.h"
#include "kvstore/ocdbt/node_cache.h"

namespace cairn::kvstore {

class OcdbtReader final : public KvStore {
 public:
  // Decoded nodes below the root are kept up to about this many bytes.
  static constexpr size_t kDefaultNodeCacheBytes = size_t{256} << 20;

  // NotFoundError naming the manifest when there is none; CorruptionError when it does not decode.
  OcdbtReader(std::shared_ptr<FileSystem> fs, std::filesystem::path dir,
              size_t node_cache_bytes = kDefaultNodeCacheBytes);

  using KvStore::Read;
  // Files (the manifest, data files) are opened without following links below the database directory.
  std::optional<std::string> Read(std::string_view key, uint64_t max_bytes) override;
  // Bytes [offset, offset + length) of a value; nullopt when the key is absent, InvalidArgumentError when the range
  // runs past the value's end.
  bool ReadInto(std::string_view key, char* out, size_t size, uint32_t* crc32c = nullptr) override;
  std::optional<std::string> ReadRange(std::string_view key, uint64_t offset, uint64_t length) override;
  std::optional<SizedRange> ReadRangeUpTo(std::string_view key, uint64_t offset, uint64_t length) override;
  std::optional<uint64_t> ValueSize(std::string_view key) override;
  // The data file and offset of an indirect value; nullopt for a value held inline in its leaf node.
  std::optional<ValueLocation> LocateValue(std::string_view key, size_t size) override;
  std::vector<std::string> ListKeys(std::string_view prefix = {}) override;
  // A reader is read-only: both throw InvalidArgumentError.
  void Write(std::string_view key, std::string value) override;
  void Flush() override;
  bool ReadsInPieces(std::string_view key) const override;
  std::string Describe() const override;
  std::string DescribeKey(std::string_view key) override;

  // Visits, in key order, every entry whose key starts with `prefix`. The entry's key is relative (ignore it; the
  // full key is passed separately) and its out-of-line reference's path is relative to the database directory.
  using Visitor = std::function<void(const std::string& key, const ocdbt::LeafEntry& entry)>;
  void ForEach(std::string_view prefix, const Visitor& visit);

  const ocdbt::Manifest& manifest() const { return manifest_; }
  // The generation being read; nullptr for a numbered-kind database that has no version yet (it reads as empty).
  const ocdbt::VersionRef* latest_version() const {
    return manifest_.versions.empty() ? nullptr : &manifest_.versions.back();
  }

 private:
  struct Found {
    std::shared_ptr<const ocdbt::BtreeNode> leaf;
    size_t index;
    const ocdbt::LeafEntry& entry() const { return leaf->leaf_entries[index]; }
  };

  std::optional<Found> Find(std::string_view key);
  std::shared_ptr<const ocdbt::BtreeNode> Root();
  std::shared_ptr<const ocdbt::BtreeNode> ReadNode(const ocdbt::IndirectRef& ref, uint8_t height,
                                                   std::string_view inclusive_min);
  std::string ReadData(const ocdbt::IndirectRef& ref, uint64_t offset, uint64_t length, const char* what);
  std::shared_ptr<ReadableFile> OpenDataFile(const ocdbt::DataFileId& id, std::filesystem::path* path);
  // `visited` holds every node reference this traversal has followed (see reader.cc).
  void Visit(const std::shared_ptr<const ocdbt::BtreeNode>& node, const std::string& node_prefix,
             std::string_view prefix, const Visitor& visit, std::set<std::string>& visited);
  size_t MaxDecodedNodeBytes() const;

  const std::shared_ptr<FileSystem> fs_;
  const std::filesystem::path dir_;
  ocdbt::Manifest manifest_;

  std::mutex mu_;
  std::shared_ptr<const ocdbt::BtreeNode> root_;  // loaded on first use
  std::map<std::string, std::shared_ptr<ReadableFile>> files_;
  ocdbt::NodeCache node_cache_;
};

}  // namespace cairn::kvstore
