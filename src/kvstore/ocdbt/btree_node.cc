#include "kvstore/ocdbt/btree_node.h"

#include <algorithm>

#include "cairn/error.h"
#include "kvstore/ocdbt/codec.h"
#include "kvstore/ocdbt/node_refs.h"

namespace cairn::kvstore::ocdbt {
namespace {

constexpr uint8_t kInlineValue = 0;
constexpr uint8_t kOutOfLineValue = 1;

// Reads the key columns shared by leaf and interior nodes: prefix lengths, suffix lengths, (interior only)
// subtree common prefix lengths, then the suffix bytes. Enforces strictly increasing keys.
std::vector<std::string> ReadKeys(ByteReader& reader, size_t n, std::vector<uint64_t>* subtree_prefix_lengths) {
  std::vector<uint64_t> prefix(n, 0), suffix(n);
  for (size_t i = 1; i < n; ++i) prefix[i] = reader.ReadVarint("key prefix length", kMaxKeyLength);
  for (size_t i = 0; i < n; ++i) suffix[i] = reader.ReadVarint("key suffix length", kMaxKeyLength);
  if (subtree_prefix_lengths) {
    subtree_prefix_lengths->resize(n);
    for (size_t i = 0; i < n; ++i) {
      (*subtree_prefix_lengths)[i] = reader.ReadVarint("subtree common prefix length", kMaxKeyLength);
    }
  }
  std::vector<std::string> keys(n);
  for (size_t i = 0; i < n; ++i) {
    std::string_view bytes = reader.ReadBytes(suffix[i], "key suffix");
    if (i == 0) {
      keys[0] = std::string(bytes);
    } else {
      const std::string& prev = keys[i - 1];
      if (prefix[i] > prev.size()) {
        reader.Fail("key " + std::to_string(i) + ": prefix length " + std::to_string(prefix[i]) +
                    " exceeds the previous key's length " + std::to_string(prev.size()));
      }
      if (prefix[i] + suffix[i] > kMaxKeyLength) reader.Fail("key " + std::to_string(i) + " is too long");
      // Both keys share prefix[i] bytes, so the order is decided by what follows.
      if (std::string_view(prev).substr(prefix[i]) >= bytes) {
        reader.Fail("keys " + std::to_string(i - 1) + " and " + std::to_string(i) + " are not strictly increasing");
      }
      keys[i].reserve(prefix[i] + suffix[i]);
      keys[i].append(prev, 0, prefix[i]).append(bytes);
    }
    if (subtree_prefix_lengths && (*subtree_prefix_lengths)[i] > keys[i].size()) {
      reader.Fail("key " + std::to_string(i) + ": subtree common prefix length exceeds the key's length");
    }
  }
  return keys;
}

// An interior entry's reference to its child, and the child's statistics (node_refs.h).
constexpr auto kChild = [](auto& e) -> auto& { return e.child; };
constexpr auto kStats = [](auto& e) -> auto& { return e.stats; };

void WriteKeys(std::string& out, const std::vector<std::string_view>& keys,
               const std::vector<uint64_t>* subtree_prefix_lengths) {
  std::vector<size_t> prefix(keys.size(), 0);
  for (size_t i = 1; i < keys.size(); ++i) {
    prefix[i] = CommonPrefixLength(keys[i - 1], keys[i]);
    AppendVarint(out, prefix[i]);
  }
  for (size_t i = 0; i < keys.size(); ++i) AppendVarint(out, keys[i].size() - prefix[i]);
  if (subtree_prefix_lengths) {
    for (uint64_t length : *subtree_prefix_lengths) AppendVarint(out, length);
  }
  for (size_t i = 0; i < keys.size(); ++i) out.append(keys[i].substr(prefix[i]));
}

void CheckKeys(const std::vector<std::string_view>& keys) {
  if (keys.empty()) throw InvalidArgumentError("cannot encode an empty B+tree node");
  if (keys.size() > kMaxNodeArity) throw InvalidArgumentError("B+tree node has too many entries");
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].size() > kMaxKeyLength) throw InvalidArgumentError("B+tree key longer than 65535 bytes");
    if (i > 0 && !(keys[i - 1] < keys[i])) throw InvalidArgumentError("B+tree node keys are not strictly increasing");
  }
}

}  // namespace

BtreeNode DecodeBtreeNode(std::string_view encoded, std::string_view transitive_path, size_t max_decoded_bytes,
                          const std::string& context) {
  std::string body = DecodeEnvelope(encoded, kBtreeNodeMagic, max_decoded_bytes, context);
  ByteReader reader(body, context);
  BtreeNode node;
  node.height = reader.ReadByte("height");
  std::vector<DataFileId> files = DecodeDataFileTable(reader, transitive_path);
  // Every entry costs at least one byte (its key suffix length), which bounds the count before allocating.
  const size_t n = reader.ReadVarint("entry count", std::min(kMaxNodeArity, reader.remaining()));
  if (n == 0) reader.Fail("B+tree node has no entries");

  if (node.height == 0) {
    std::vector<std::string> keys = ReadKeys(reader, n, nullptr);
    std::vector<uint64_t> lengths(n);
    for (auto& length : lengths) length = reader.ReadVarint("value length");
    std::vector<uint8_t> kinds(n);
    for (size_t i = 0; i < n; ++i) {
      kinds[i] = reader.ReadByte("value kind");
      if (kinds[i] > kOutOfLineValue) reader.Fail("value kind " + std::to_string(kinds[i]) + " is not 0 or 1");
    }
    node.leaf_entries.resize(n);
    for (size_t i = 0; i < n; ++i) {
      node.leaf_entries[i].key = std::move(keys[i]);
      if (kinds[i] == kOutOfLineValue) {
        IndirectRef ref;
        ref.length = lengths[i];
        node.leaf_entries[i].value = std::move(ref);
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (kinds[i] == kOutOfLineValue) std::get<IndirectRef>(node.leaf_entries[i].value).file = ReadDataFileId(reader, files);
    }
    for (size_t i = 0; i < n; ++i) {
      if (kinds[i] != kOutOfLineValue) continue;
      auto& ref = std::get<IndirectRef>(node.leaf_entries[i].value);
      ref.offset = reader.ReadVarint("value offset");
      if (!ref.IsValidRange()) reader.Fail("value " + std::to_string(i) + " has an impossible offset and length");
    }
    for (size_t i = 0; i < n; ++i) {
      if (kinds[i] == kInlineValue) {
        // ReadBytes checks the length against the bytes present before anything is copied.
        node.leaf_entries[i].value = std::string(reader.ReadBytes(lengths[i], "inline value"));
      }
    }
  } else {
    std::vector<uint64_t> subtree_prefix;
    std::vector<std::string> keys = ReadKeys(reader, n, &subtree_prefix);
    node.interior_entries.resize(n);
    for (size_t i = 0; i < n; ++i) {
      node.interior_entries[i].key = std::move(keys[i]);
      node.interior_entries[i].subtree_common_prefix_length = subtree_prefix[i];
    }
    ReadNodeRefs(reader, files, node.interior_entries, "child", kChild, kStats);
    for (size_t i = 0; i < n; ++i) {
      if (!node.interior_entries[i].child.IsValidRange()) {
        reader.Fail("child " + std::to_string(i) + " has an impossible offset and length");
      }
    }
  }
  reader.ExpectEnd();
  return node;
}

std::string EncodeBtreeNode(const BtreeNode& node, const Compression& compression) {
  std::string body;
  body.push_back(static_cast<char>(node.height));
  DataFileTableBuilder table;
  std::vector<std::string_view> keys;
  if (node.height == 0) {
    for (const auto& e : node.leaf_entries) {
      keys.push_back(e.key);
      if (auto* ref = std::get_if<IndirectRef>(&e.value)) table.Add(ref->file);
    }
    CheckKeys(keys);
    table.Encode(body);
    AppendVarint(body, keys.size());
    WriteKeys(body, keys, nullptr);
    for (const auto& e : node.leaf_entries) AppendVarint(body, e.value_length());
    for (const auto& e : node.leaf_entries) {
      body.push_back(static_cast<char>(std::holds_alternative<IndirectRef>(e.value) ? kOutOfLineValue : kInlineValue));
    }
    for (const auto& e : node.leaf_entries) {
      if (auto* ref = std::get_if<IndirectRef>(&e.value)) AppendVarint(body, table.IndexOf(ref->file));
    }
    for (const auto& e : node.leaf_entries) {
      if (auto* ref = std::get_if<IndirectRef>(&e.value)) AppendVarint(body, ref->offset);
    }
    for (const auto& e : node.leaf_entries) {
      if (auto* value = std::get_if<std::string>(&e.value)) body.append(*value);
    }
  } else {
    std::vector<uint64_t> subtree_prefix;
    for (const auto& e : node.interior_entries) {
      keys.push_back(e.key);
      subtree_prefix.push_back(e.subtree_common_prefix_length);
      if (e.subtree_common_prefix_length > e.key.size()) {
        throw InvalidArgumentError("subtree common prefix longer than its key");
      }
      table.Add(e.child.file);
    }
    CheckKeys(keys);
    table.Encode(body);
    AppendVarint(body, keys.size());
    WriteKeys(body, keys, &subtree_prefix);
    AppendNodeRefs(body, table, node.interior_entries, kChild, kStats);
  }
  return EncodeEnvelope(kBtreeNodeMagic, body, compression);
}

}  // namespace cairn::kvstore::ocdbt
