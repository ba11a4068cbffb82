// B+tree nodes: the envelope (magic 0x0cdb20de) around
//
//   height:u8 | data_file_table | num_entries:varint (>= 1) | columns
//
// Leaf (height 0) columns: key_prefix_len[n-1], key_suffix_len[n], key suffixes, value_length[n],
// value_kind[n] (u8: 0 inline, 1 out of line), data_file_id and offset of each out-of-line value, inline values.
// Interior columns: key_prefix_len[n-1], key_suffix_len[n], subtree_common_prefix_len[n], key suffixes,
// child data_file_id[n], offset[n], length[n], num_keys[n], num_tree_bytes[n], num_indirect_value_bytes[n].
//
// Keys are relative: a node's keys omit the prefix its ancestors fixed. Interior entry i is the inclusive lower
// bound of child i, and child i's keys are relative to inherited + key_i[0:subtree_common_prefix_len_i].
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kvstore/ocdbt/envelope.h"
#include "kvstore/ocdbt/indirect_ref.h"

namespace cairn::kvstore::ocdbt {

constexpr size_t kMaxKeyLength = 65535;
constexpr size_t kMaxNodeArity = size_t{1} << 20;

struct LeafEntry {
  std::string key;                               // relative to the node's inherited prefix
  std::variant<std::string, IndirectRef> value;  // inline bytes, or where the bytes lie

  uint64_t value_length() const {
    if (auto* inline_value = std::get_if<std::string>(&value)) return inline_value->size();
    return std::get<IndirectRef>(value).length;
  }
};

struct InteriorEntry {
  std::string key;  // relative; the inclusive lower bound of the child's keys
  uint64_t subtree_common_prefix_length = 0;
  IndirectRef child;
  BtreeStats stats;
};

struct BtreeNode {
  uint8_t height = 0;
  std::vector<LeafEntry> leaf_entries;          // height == 0
  std::vector<InteriorEntry> interior_entries;  // height > 0
};

// `transitive_path` is the base path inherited from the reference that led here; `context` names the node in errors.
BtreeNode DecodeBtreeNode(std::string_view encoded, std::string_view transitive_path, size_t max_decoded_bytes,
                          const std::string& context);

// Entries must be sorted by key, strictly increasing. Every IndirectRef's base_path is relative to the node's own
// transitive path, which is "" for a node a writer puts into its database's own data files.
std::string EncodeBtreeNode(const BtreeNode& node, const Compression& compression);

}  // namespace cairn::kvstore::ocdbt
