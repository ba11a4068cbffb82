// The references to B+tree nodes in an interior node (its children) and in the manifest (each version's root),
// which OCDBT encodes alike: columns of data file index, offset and length, then the subtree's statistics
// (num_keys, num_tree_bytes, num_indirect_value_bytes), one value per entry in each column.
#pragma once

#include <string>

#include "kvstore/ocdbt/codec.h"
#include "kvstore/ocdbt/data_file_table.h"
#include "kvstore/ocdbt/indirect_ref.h"

namespace cairn::kvstore::ocdbt {

// `ref(e)` and `stats(e)` give each entry's IndirectRef and BtreeStats.
template <typename Entries, typename Ref, typename Stats>
void AppendNodeRefs(std::string& out, const DataFileTableBuilder& table, const Entries& entries, Ref ref,
                    Stats stats) {
  for (const auto& e : entries) AppendVarint(out, table.IndexOf(ref(e).file));
  for (const auto& e : entries) AppendVarint(out, ref(e).offset);
  for (const auto& e : entries) AppendVarint(out, ref(e).length);
  for (const auto& e : entries) AppendVarint(out, stats(e).num_keys);
  for (const auto& e : entries) AppendVarint(out, stats(e).num_tree_bytes);
  for (const auto& e : entries) AppendVarint(out, stats(e).num_indirect_value_bytes);
}

// The inverse, into entries already sized; `what` names the reference in errors ("child offset", "root length").
// Ranges are not checked here (an empty tree's root is Missing()).
template <typename Entries, typename Ref, typename Stats>
void ReadNodeRefs(ByteReader& reader, const std::vector<DataFileId>& files, Entries& entries, const std::string& what,
                  Ref ref, Stats stats) {
  for (auto& e : entries) ref(e).file = ReadDataFileId(reader, files);
  for (auto& e : entries) ref(e).offset = reader.ReadVarint(what + " offset");
  for (auto& e : entries) ref(e).length = reader.ReadVarint(what + " length");
  for (auto& e : entries) stats(e).num_keys = reader.ReadVarint("num_keys");
  for (auto& e : entries) stats(e).num_tree_bytes = reader.ReadVarint("num_tree_bytes");
  for (auto& e : entries) stats(e).num_indirect_value_bytes = reader.ReadVarint("num_indirect_value_bytes");
}

}  // namespace cairn::kvstore::ocdbt
