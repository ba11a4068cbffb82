// Builds a complete B+tree, bottom-up, from sorted entries and appends its nodes to a data file writer: the
// writer's Flush and the merge of per-process databases both end here.
//
// Leaves are packed so that each node's decoded size stays within max_decoded_node_bytes (a single entry larger
// than that gets a node of its own), interior levels are added until one node remains, and that node is the root.
// Every non-root node drops the prefix common to its first and last key (capped, for interior nodes, by what its
// children dropped): the parent records the dropped length as subtree_common_prefix_len.
#pragma once

#include <cstdint>
#include <vector>

#include "kvstore/ocdbt/btree_node.h"
#include "kvstore/ocdbt/data_file_writer.h"

namespace cairn::kvstore::ocdbt {

struct BtreeBuildOptions {
  uint32_t max_decoded_node_bytes = 100000000;  // 0: no limit but the arity limit, as in TensorStore
  Compression compression;
};

struct BuiltTree {
  uint8_t height = 0;
  IndirectRef root = IndirectRef::Missing();  // Missing() when there are no entries
  BtreeStats stats;
};

// `entries` hold full keys, sorted and unique. Out-of-line references must be relative to the database directory
// (the nodes are written with an empty transitive path).
BuiltTree BuildBtree(std::vector<LeafEntry> entries, const BtreeBuildOptions& options, DataFileWriter& out);

}  // namespace cairn::kvstore::ocdbt
