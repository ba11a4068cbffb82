// A reference to bytes stored in a data file (an out-of-line value, a B+tree node, a version-tree node), and the
// subtree statistics that travel with every reference to a B+tree node.
#pragma once

#include <cstdint>
#include <limits>

#include "kvstore/ocdbt/data_file_table.h"

namespace cairn::kvstore::ocdbt {

struct IndirectRef {
  DataFileId file;
  uint64_t offset = 0;
  uint64_t length = 0;

  // An empty tree's root is "missing": offset and length both all-ones.
  static IndirectRef Missing() {
    IndirectRef ref;
    ref.offset = ref.length = std::numeric_limits<uint64_t>::max();
    return ref;
  }
  bool IsMissing() const {
    return offset == std::numeric_limits<uint64_t>::max() && length == std::numeric_limits<uint64_t>::max();
  }
  // offset + length must not overflow and must stay within a signed 64-bit file offset (TensorStore's rule).
  bool IsValidRange() const {
    return offset <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
           length <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - offset;
  }
  bool operator==(const IndirectRef&) const = default;
};

struct BtreeStats {
  uint64_t num_keys = 0;
  uint64_t num_tree_bytes = 0;            // encoded size of every node in the subtree, its root included
  uint64_t num_indirect_value_bytes = 0;  // total length of the out-of-line values in the subtree

  // Saturating, as TensorStore's statistics are: they are informational, never worth an overflow.
  BtreeStats& operator+=(const BtreeStats& other) {
    num_keys = SaturatingAdd(num_keys, other.num_keys);
    num_tree_bytes = SaturatingAdd(num_tree_bytes, other.num_tree_bytes);
    num_indirect_value_bytes = SaturatingAdd(num_indirect_value_bytes, other.num_indirect_value_bytes);
    return *this;
  }
  bool operator==(const BtreeStats&) const = default;

  static uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
    return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
  }
};

}  // namespace cairn::kvstore::ocdbt
