// The manifest (`manifest.ocdbt`, magic 0x0cdb3a2a): the database config, then (single kind) the version tree:
//
//   config: uuid[16] | manifest_kind:u8 | max_inline_value_bytes:varint | max_decoded_node_bytes:varint
//           | version_tree_arity_log2:u8 | compression_method:varint [| zstd_level:i32 LE]
//   data_file_table | inline_versions (version-tree leaf entries) | version_nodes (interior entries + height)
//
// The envelope body is compressed with the config's own compression. A numbered-kind `manifest.ocdbt` holds only
// the config; the versions then live in `manifest.<16 hex digits>` files (single-kind encoded), the highest
// number being the latest.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kvstore/ocdbt/envelope.h"
#include "kvstore/ocdbt/indirect_ref.h"

namespace cairn::kvstore::ocdbt {

enum class ManifestKind : uint8_t { kSingle = 0, kNumbered = 1 };

struct Config {
  std::array<uint8_t, 16> uuid{};
  ManifestKind manifest_kind = ManifestKind::kSingle;
  uint32_t max_inline_value_bytes = 1024;
  uint32_t max_decoded_node_bytes = 100000000;
  uint8_t version_tree_arity_log2 = 4;
  Compression compression;  // zstd level 0 by default

  bool operator==(const Config& other) const;
};

// One generation: a B+tree root (the inline versions of a manifest, or a version-tree leaf's entries).
struct VersionRef {
  uint64_t generation = 0;
  uint8_t root_height = 0;
  IndirectRef root;  // Missing() for an empty tree
  BtreeStats stats;
  uint64_t commit_time_ns = 0;  // nanoseconds since the Unix epoch
};

// A reference to a version-tree node holding older generations.
struct VersionNodeRef {
  uint64_t generation = 0;  // latest generation in the subtree
  IndirectRef location;
  uint64_t num_generations = 0;
  uint64_t commit_time = 0;  // earliest commit in the subtree
  uint8_t height = 0;
};

struct Manifest {
  Config config;
  std::vector<VersionRef> versions;           // empty only in a numbered-kind config manifest
  std::vector<VersionNodeRef> version_nodes;  // parsed but never followed: the latest version is always inline
};

// `path` names the file in errors. Data file paths in the result are relative to the database directory.
Manifest DecodeManifest(std::string_view encoded, const std::string& path);

// Encodes a single-kind manifest (or, with manifest_kind numbered and no versions, a config-only one).
std::string EncodeManifest(const Manifest& manifest);

}  // namespace cairn::kvstore::ocdbt
