#include "kvstore/ocdbt/manifest.h"

#include "cairn/error.h"
#include "core/zstd.h"
#include "kvstore/ocdbt/codec.h"
#include "kvstore/ocdbt/node_refs.h"

namespace cairn::kvstore::ocdbt {
namespace {

// Manifests hold a config, a file table and at most a few dozen version references; 64 MiB is far beyond any
// valid one (paths are capped at 64 KiB each) and bounds what a corrupt zstd stream can make us allocate.
constexpr size_t kMaxDecodedManifestBytes = 64u << 20;
constexpr uint8_t kMaxVersionTreeArityLog2 = 16;

Config DecodeConfig(ByteReader& reader) {
  Config config;
  std::string_view uuid = reader.ReadBytes(16, "uuid");
  for (size_t i = 0; i < 16; ++i) config.uuid[i] = static_cast<uint8_t>(uuid[i]);
  uint8_t kind = reader.ReadByte("manifest_kind");
  if (kind > 1) reader.Fail("invalid manifest_kind " + std::to_string(kind));
  config.manifest_kind = static_cast<ManifestKind>(kind);
  config.max_inline_value_bytes = static_cast<uint32_t>(reader.ReadVarint("max_inline_value_bytes", UINT32_MAX));
  config.max_decoded_node_bytes = static_cast<uint32_t>(reader.ReadVarint("max_decoded_node_bytes", UINT32_MAX));
  config.version_tree_arity_log2 = reader.ReadByte("version_tree_arity_log2");
  if (config.version_tree_arity_log2 == 0 || config.version_tree_arity_log2 > kMaxVersionTreeArityLog2) {
    reader.Fail("version_tree_arity_log2 " + std::to_string(config.version_tree_arity_log2) +
                " is outside [1, 16]");
  }
  uint64_t method = reader.ReadVarint("compression_method");
  if (method == 0) {
    config.compression.zstd = false;
  } else if (method == 1) {
    config.compression.zstd = true;
    config.compression.zstd_level = static_cast<int32_t>(reader.ReadU32LE("zstd level"));
    if (!ZstdLevelInRange(config.compression.zstd_level)) {
      reader.Fail("zstd level " + std::to_string(config.compression.zstd_level) + " is out of range");
    }
  } else {
    reader.Fail("unknown compression_method " + std::to_string(method));
  }
  return config;
}

void EncodeConfig(std::string& out, const Config& config) {
  out.append(reinterpret_cast<const char*>(config.uuid.data()), config.uuid.size());
  out.push_back(static_cast<char>(config.manifest_kind));
  AppendVarint(out, config.max_inline_value_bytes);
  AppendVarint(out, config.max_decoded_node_bytes);
  out.push_back(static_cast<char>(config.version_tree_arity_log2));
  AppendVarint(out, config.compression.zstd ? 1 : 0);
  if (config.compression.zstd) AppendU32LE(out, static_cast<uint32_t>(config.compression.zstd_level));
}

// A version's reference to its tree's root, and the tree's statistics (node_refs.h).
constexpr auto kRoot = [](auto& v) -> auto& { return v.root; };
constexpr auto kStats = [](auto& v) -> auto& { return v.stats; };

std::vector<VersionRef> DecodeVersions(ByteReader& reader, const Config& config,
                                       const std::vector<DataFileId>& files) {
  const uint64_t arity = uint64_t{1} << config.version_tree_arity_log2;
  const size_t n = reader.ReadVarint("inline version count", arity);
  if (n == 0) reader.Fail("manifest lists no versions");
  std::vector<VersionRef> versions(n);
  for (auto& v : versions) v.generation = reader.ReadVarint("generation number");
  for (auto& v : versions) v.root_height = reader.ReadByte("root height");
  ReadNodeRefs(reader, files, versions, "root", kRoot, kStats);
  for (auto& v : versions) v.commit_time_ns = reader.ReadU64LE("commit time");
  for (size_t i = 0; i < n; ++i) {
    const VersionRef& v = versions[i];
    if (v.generation == 0) reader.Fail("generation number 0");
    if (i > 0 && v.generation <= versions[i - 1].generation) reader.Fail("generation numbers are not increasing");
    if (!v.root.IsMissing() && !v.root.IsValidRange()) reader.Fail("root reference has an impossible range");
    if (v.root.IsMissing() && v.root_height != 0) reader.Fail("an empty tree must have height 0");
  }
  // The inline versions are one version-tree leaf: they all share the latest generation's leaf range.
  const uint64_t last = versions.back().generation;
  const uint64_t first_in_leaf = last - (last - 1) % arity;
  if (versions.front().generation < first_in_leaf) reader.Fail("inline versions span more than one version-tree leaf");
  return versions;
}

std::vector<VersionNodeRef> DecodeVersionNodes(ByteReader& reader, const Config& config,
                                               const std::vector<DataFileId>& files) {
  const uint64_t max_height = 63 / config.version_tree_arity_log2 - 1;
  const size_t n = reader.ReadVarint("version node count", max_height);
  std::vector<VersionNodeRef> nodes(n);
  for (auto& v : nodes) v.generation = reader.ReadVarint("version node generation");
  for (auto& v : nodes) v.location.file = ReadDataFileId(reader, files);
  for (auto& v : nodes) v.location.offset = reader.ReadVarint("version node offset");
  for (auto& v : nodes) v.location.length = reader.ReadVarint("version node length");
  for (auto& v : nodes) v.num_generations = reader.ReadVarint("version node generation count");
  for (auto& v : nodes) v.commit_time = reader.ReadU64LE("version node commit time");
  for (auto& v : nodes) v.height = reader.ReadByte("version node height");
  for (size_t i = 0; i < n; ++i) {
    const VersionNodeRef& v = nodes[i];
    if (v.generation == 0) reader.Fail("version node generation number 0");
    if (v.height == 0 || v.height > max_height) reader.Fail("version node height out of range");
    if (!v.location.IsValidRange()) reader.Fail("version node reference has an impossible range");
    if (i > 0 && (v.generation <= nodes[i - 1].generation || v.height >= nodes[i - 1].height)) {
      reader.Fail("version nodes are out of order");
    }
  }
  return nodes;
}

}  // namespace

bool Config::operator==(const Config& other) const {
  return uuid == other.uuid && manifest_kind == other.manifest_kind &&
         max_inline_value_bytes == other.max_inline_value_bytes &&
         max_decoded_node_bytes == other.max_decoded_node_bytes &&
         version_tree_arity_log2 == other.version_tree_arity_log2 && compression.zstd == other.compression.zstd &&
         (!compression.zstd || compression.zstd_level == other.compression.zstd_level);
}

Manifest DecodeManifest(std::string_view encoded, const std::string& path) {
  const std::string context = "OCDBT manifest " + path;
  std::string body = DecodeEnvelope(encoded, kManifestMagic, kMaxDecodedManifestBytes, context);
  ByteReader reader(body, context);
  Manifest manifest;
  manifest.config = DecodeConfig(reader);
  if (manifest.config.manifest_kind == ManifestKind::kSingle) {
    // The manifest's file table has no transitive path: its paths are relative to the database directory.
    std::vector<DataFileId> files = DecodeDataFileTable(reader, "");
    manifest.versions = DecodeVersions(reader, manifest.config, files);
    manifest.version_nodes = DecodeVersionNodes(reader, manifest.config, files);
    if (!manifest.version_nodes.empty() &&
        manifest.version_nodes.back().generation >= manifest.versions.front().generation) {
      reader.Fail("version nodes overlap the inline versions");
    }
  }
  reader.ExpectEnd();
  return manifest;
}

std::string EncodeManifest(const Manifest& manifest) {
  std::string body;
  EncodeConfig(body, manifest.config);
  if (manifest.config.manifest_kind == ManifestKind::kSingle) {
    if (manifest.versions.empty()) throw InvalidArgumentError("a single-kind manifest needs at least one version");
    DataFileTableBuilder table;
    for (const auto& v : manifest.versions) table.Add(v.root.file);
    for (const auto& v : manifest.version_nodes) table.Add(v.location.file);
    table.Encode(body);
    AppendVarint(body, manifest.versions.size());
    for (const auto& v : manifest.versions) AppendVarint(body, v.generation);
    for (const auto& v : manifest.versions) body.push_back(static_cast<char>(v.root_height));
    AppendNodeRefs(body, table, manifest.versions, kRoot, kStats);
    for (const auto& v : manifest.versions) AppendU64LE(body, v.commit_time_ns);
    AppendVarint(body, manifest.version_nodes.size());
    for (const auto& v : manifest.version_nodes) AppendVarint(body, v.generation);
    for (const auto& v : manifest.version_nodes) AppendVarint(body, table.IndexOf(v.location.file));
    for (const auto& v : manifest.version_nodes) AppendVarint(body, v.location.offset);
    for (const auto& v : manifest.version_nodes) AppendVarint(body, v.location.length);
    for (const auto& v : manifest.version_nodes) AppendVarint(body, v.num_generations);
    for (const auto& v : manifest.version_nodes) AppendU64LE(body, v.commit_time);
    for (const auto& v : manifest.version_nodes) body.push_back(static_cast<char>(v.height));
  }
  return EncodeEnvelope(kManifestMagic, body, manifest.config.compression);
}

}  // namespace cairn::kvstore::ocdbt
