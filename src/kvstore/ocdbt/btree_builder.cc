#include "kvstore/ocdbt/btree_builder.h"

#include <algorithm>
#include <set>

#include "cairn/error.h"
#include "kvstore/ocdbt/codec.h"

namespace cairn::kvstore::ocdbt {
namespace {

// Upper bounds used while packing. A node's decoded size is computed as if it dropped no prefix: dropping one only
// shortens key suffixes and prefix lengths, so the estimate never undercounts.
constexpr size_t kNodeOverhead = 1 + 3 + 3;  // height, file count, entry count (both < 2^21)
constexpr size_t kFileIndexBytes = 3;        // a file index is below the 2^20 arity limit
constexpr size_t kFileTableEntryBytes = 3 * 3;  // prefix, suffix and base lengths, each <= 65535

// What the parent needs to know about a finished child node.
struct ChildRef {
  std::string first_key;  // full key: the child's inclusive lower bound
  size_t dropped_prefix = 0;  // bytes of first_key common to the whole subtree (the child's dropped prefix)
  IndirectRef ref;
  BtreeStats stats;
};

size_t KeyCost(std::string_view prev, std::string_view key, bool first) {
  if (first) return VarintLength(key.size()) + key.size();
  size_t common = CommonPrefixLength(prev, key);
  return VarintLength(common) + VarintLength(key.size() - common) + (key.size() - common);
}

// Table bytes a file adds to a node unless the node already references it.
size_t FileCost(const DataFileId* id, const std::set<DataFileId>& seen) {
  if (id == nullptr || seen.count(*id)) return 0;
  return kFileTableEntryBytes + id->base_path.size() + id->relative_path.size();
}

const DataFileId* FileOf(const LeafEntry& e) {
  auto* ref = std::get_if<IndirectRef>(&e.value);
  return ref ? &ref->file : nullptr;
}
const DataFileId* FileOf(const ChildRef& c) { return &c.ref.file; }

size_t EntryCost(const LeafEntry& e, std::string_view prev, bool first, const std::set<DataFileId>& files) {
  size_t cost = KeyCost(prev, e.key, first) + VarintLength(e.value_length()) + 1 + FileCost(FileOf(e), files);
  if (auto* ref = std::get_if<IndirectRef>(&e.value)) {
    cost += kFileIndexBytes + VarintLength(ref->offset);
  } else {
    cost += std::get<std::string>(e.value).size();
  }
  return cost;
}

size_t EntryCost(const ChildRef& c, std::string_view prev, bool first, const std::set<DataFileId>& files) {
  return KeyCost(prev, c.first_key, first) + VarintLength(c.dropped_prefix) + kFileIndexBytes +
         VarintLength(c.ref.offset) + VarintLength(c.ref.length) + VarintLength(c.stats.num_keys) +
         VarintLength(c.stats.num_tree_bytes) + VarintLength(c.stats.num_indirect_value_bytes) +
         FileCost(FileOf(c), files);
}

template <typename Item>
void NoteFile(const Item& item, std::set<DataFileId>& files) {
  if (const DataFileId* id = FileOf(item)) files.insert(*id);
}

const std::string& KeyOf(const LeafEntry& e) { return e.key; }
const std::string& KeyOf(const ChildRef& c) { return c.first_key; }

// Splits `items` into consecutive groups (returned as end indices), each within `max_bytes` by the estimate above,
// with at least `min_arity` items per group (so every level shrinks) and at most kMaxNodeArity. Groups aim at equal
// sizes, so the last node is not left nearly empty.
template <typename Item>
std::vector<size_t> Partition(const std::vector<Item>& items, uint64_t max_bytes, size_t min_arity) {
  const uint64_t limit = max_bytes == 0 ? UINT64_MAX : max_bytes;
  // First pass: the total size as one run, to pick a per-node target.
  uint64_t total = kNodeOverhead;
  {
    std::set<DataFileId> files;
    for (size_t i = 0; i < items.size(); ++i) {
      total += EntryCost(items[i], i ? std::string_view(KeyOf(items[i - 1])) : std::string_view(), i == 0, files);
      NoteFile(items[i], files);
    }
  }
  uint64_t num_nodes = std::max<uint64_t>({(total + limit - 1) / limit,
                                           (items.size() + kMaxNodeArity - 1) / kMaxNodeArity, 1});
  const uint64_t target = (total + num_nodes - 1) / num_nodes;

  std::vector<size_t> ends;
  size_t start = 0;
  while (start < items.size()) {
    std::set<DataFileId> files;
    uint64_t size = kNodeOverhead + EntryCost(items[start], {}, true, files);
    NoteFile(items[start], files);
    size_t end = start + 1;
    while (end < items.size() && end - start < kMaxNodeArity) {
      if (end - start >= min_arity && size >= target) break;
      uint64_t next = EntryCost(items[end], KeyOf(items[end - 1]), false, files);
      if (end - start >= min_arity && size + next > limit) break;
      size += next;
      NoteFile(items[end], files);
      ++end;
    }
    // Never leave fewer than `min_arity` items for the final node: hand it items from this one if this one can
    // spare them (which keeps both within the limit), else take the rest into this one.
    if (end < items.size() && items.size() - end < min_arity) {
      size_t need = min_arity - (items.size() - end);
      if (end - start >= min_arity + need) {
        end -= need;
      } else {
        end = items.size();
      }
    }
    ends.push_back(end);
    start = end;
  }
  return ends;
}

ChildRef WriteNode(BtreeNode node, std::string first_key, size_t dropped_prefix, BtreeStats stats,
                   const BtreeBuildOptions& options, DataFileWriter& out) {
  std::string encoded = EncodeBtreeNode(node, options.compression);
  ChildRef child;
  child.ref = out.Append(encoded);
  child.first_key = std::move(first_key);
  child.dropped_prefix = dropped_prefix;
  stats.num_tree_bytes = BtreeStats::SaturatingAdd(stats.num_tree_bytes, encoded.size());
  child.stats = stats;
  return child;
}

}  // namespace

BuiltTree BuildBtree(std::vector<LeafEntry> entries, const BtreeBuildOptions& options, DataFileWriter& out) {
  BuiltTree tree;
  if (entries.empty()) return tree;  // an empty database: no root node at all
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].key.size() > kMaxKeyLength) {
      throw InvalidArgumentError("OCDBT key of " + std::to_string(entries[i].key.size()) +
                                 " bytes exceeds the 65535-byte limit");
    }
    if (i > 0 && !(entries[i - 1].key < entries[i].key)) {
      throw InvalidArgumentError("BuildBtree needs sorted, unique keys");
    }
  }

  // Leaves.
  std::vector<ChildRef> level;
  {
    std::vector<size_t> ends = Partition(entries, options.max_decoded_node_bytes, 1);
    const bool is_root = ends.size() == 1;
    size_t start = 0;
    for (size_t end : ends) {
      // The root keeps full keys; any other node drops the prefix all its keys share.
      size_t drop = is_root ? 0 : CommonPrefixLength(entries[start].key, entries[end - 1].key);
      std::string first_key = entries[start].key;
      BtreeNode node;
      node.height = 0;
      BtreeStats stats;
      stats.num_keys = end - start;
      for (size_t i = start; i < end; ++i) {
        LeafEntry& e = entries[i];
        if (auto* ref = std::get_if<IndirectRef>(&e.value)) {
          stats.num_indirect_value_bytes = BtreeStats::SaturatingAdd(stats.num_indirect_value_bytes, ref->length);
        }
        e.key.erase(0, drop);
        node.leaf_entries.push_back(std::move(e));
      }
      level.push_back(WriteNode(std::move(node), std::move(first_key), drop, stats, options, out));
      start = end;
    }
    if (is_root) {
      tree.root = level[0].ref;
      tree.stats = level[0].stats;
      return tree;
    }
  }
  entries = {};

  // Interior levels, until one node covers everything.
  for (uint8_t height = 1;; ++height) {
    if (height == 255) throw InvalidArgumentError("OCDBT B+tree would exceed height 255");
    std::vector<size_t> ends = Partition(level, options.max_decoded_node_bytes, 2);
    const bool is_root = ends.size() == 1;
    std::vector<ChildRef> next;
    size_t start = 0;
    for (size_t end : ends) {
      size_t drop = 0;
      if (!is_root) {
        // Dropping more than a child dropped would cut into keys that child still stores.
        drop = CommonPrefixLength(level[start].first_key, level[end - 1].first_key);
        for (size_t i = start; i < end; ++i) drop = std::min(drop, level[i].dropped_prefix);
      }
      std::string first_key = level[start].first_key;
      BtreeNode node;
      node.height = height;
      BtreeStats stats;
      for (size_t i = start; i < end; ++i) {
        ChildRef& c = level[i];
        stats += c.stats;
        InteriorEntry e;
        e.key = c.first_key.substr(drop);
        e.subtree_common_prefix_length = c.dropped_prefix - drop;
        e.child = std::move(c.ref);
        e.stats = c.stats;
        node.interior_entries.push_back(std::move(e));
      }
      next.push_back(WriteNode(std::move(node), std::move(first_key), drop, stats, options, out));
      start = end;
    }
    level = std::move(next);
    if (is_root) {
      tree.height = height;
      tree.root = level[0].ref;
      tree.stats = level[0].stats;
      return tree;
    }
  }
}

}  // namespace cairn::kvstore::ocdbt
