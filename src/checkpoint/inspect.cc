// DescribeCheckpoint: the layout, the tree and each array's storage, from metadata files only.
#include "cairn/inspect.h"

#include <set>

#include "cairn/error.h"
#include "checkpoint/layout.h"
#include "core/crc32c.h"
#include "handlers/array_storage.h"
#include "handlers/synthesized_metadata.h"
#include "io/temporary_path.h"
#include "metadata/array_metadata.h"
#include "metadata/checkpoint_metadata.h"
#include "metadata/checksums.h"
#include "metadata/delta_record.h"
#include "metadata/legacy_aggregate.h"
#include "metadata/python_json.h"
#include "metadata/tree_metadata.h"
#include "zarr/zarr_array.h"

namespace cairn {
namespace {

namespace md = metadata;
using ojson = nlohmann::ordered_json;

bool IsArrayType(const std::string& type) {
  return type == md::kJaxArray || type == md::kNumpyArray || type == md::kScalar;
}

// What the compressor made of one array's chunks (`cairn info --stored`): their stored bytes and, for zstd, how many
// were written in raw blocks because compressing them did not pay (a chunk stored at least at its full size). Reads
// every chunk value.
void DescribeStored(kvstore::KvStore& store, const std::string& param, const zarr::ZarrMetadata& m, ojson& leaf) {
  const uint64_t chunk_bytes = NumBytes(m.dtype, m.chunks);
  uint64_t stored = 0, chunks = 0, raw = 0;
  zarr::ForEachChunkKey(m, [&](const std::string& key) {
    const auto value = store.Read(param + "/" + key, zarr::MaxStoredChunkBytes(m));
    if (!value) return;  // never written: the fill value
    ++chunks;
    stored += value->size();
    if (value->size() >= chunk_bytes) ++raw;
  });
  leaf["stored_bytes"] = stored;
  leaf["stored_chunks"] = chunks;
  if (m.compressed()) leaf["chunks_not_compressed"] = raw;
}

ojson DescribePyTree(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& dir, bool stored_sizes) {
  ojson out;
  std::optional<md::TreeMetadata> tree;
  const auto metadata_path = dir / md::kTreeMetadataFile;
  // The CRC-32Cs cairn recorded (none in Orbax's items): the metadata read here is checked as a restore checks it.
  const md::Checksums sums = md::ReadItemChecksums(*fs, dir);
  if (fs->Exists(metadata_path)) {
    tree = md::DecodeTreeMetadata(md::ReadItemFile(*fs, dir, md::kTreeMetadataFile, sums), metadata_path.string());
  }
  auto store = handlers::OpenArrayStoreForRead(fs, dir, tree ? tree->use_ocdbt : std::nullopt);
  const zarr::ChunkObserver check_zarr_metadata = [&](const std::string& key, std::string_view stored,
                                                      const uint32_t*) {
    if (auto it = sums.chunks.find(key); it != sums.chunks.end() && Crc32c(stored) != it->second) {
      throw CorruptionError("zarr metadata " + key + " fails its CRC-32C check [" + store->DescribeKey(key) + "]");
    }
  };

  int processes = 0;
  for (const auto& name : fs->ListDir(dir)) {
    if (name.rfind("ocdbt.process_", 0) == 0) ++processes;
  }
  if (processes == 0 && fs->IsDirectory(dir / md::kArrayMetadatasDir)) {
    processes = static_cast<int>(fs->ListDir(dir / md::kArrayMetadatasDir).size());
  }
  const bool ocdbt = fs->Exists(dir / "manifest.ocdbt");
  ojson layout;
  layout["ocdbt"] = ocdbt;
  layout["processes"] = std::max(processes, 1);
  layout["checksums"] = fs->IsDirectory(dir / md::kChecksumsDir);
  layout["metadata_file"] = tree.has_value();

  Tree aggregate;
  bool aggregate_loaded = false;
  auto load_aggregate = [&] {
    if (aggregate_loaded) return;
    const auto path = dir / md::kLegacyAggregateFile;
    if (fs->Exists(path)) {
      aggregate = md::DecodeMsgpackAggregate(
          fs->ReadFileBelow(dir, md::kLegacyAggregateFile, md::kMaxAggregateFileBytes), path.string());
    }
    aggregate_loaded = true;
  };
  if (!tree) {
    // As a restore does: from the arrays stored and the values of a legacy aggregate file.
    load_aggregate();
    tree = handlers::SynthesizeTreeMetadata(*store, nullptr, aggregate);
  }
  const std::vector<md::TreeMetadataEntry>& entries = tree->entries;

  // Each array's sharding as `_sharding` records it (Orbax's JSON object); absent from some Orbax checkpoints.
  std::map<std::string, nlohmann::json> shardings;
  if (fs->Exists(dir / md::kShardingFile)) {
    shardings = md::DecodeSharding(md::ReadItemFile(*fs, dir, md::kShardingFile, sums),
                                   (dir / md::kShardingFile).string());
  }

  std::set<int> formats;
  uint64_t total = 0;
  ojson leaves = ojson::array();
  for (const auto& entry : entries) {
    ojson leaf;
    const std::string param = ParamName(entry.path);
    leaf["name"] = param;
    leaf["value_type"] = entry.value_type;
    if (IsArrayType(entry.value_type)) {
      try {
        if (entry.skip_deserialize) {
          load_aggregate();
          const Tree* node = &aggregate;
          for (const auto& key : entry.path) {
            if (node->is_dict() && node->contains(key.key)) {
              node = &(*node)[key.key];
            } else if (node->is_sequence() && key.key.size() < 10 && !key.key.empty() &&
                       key.key.find_first_not_of("0123456789") == std::string::npos &&
                       std::stoul(key.key) < node->size()) {
              node = &(*node)[static_cast<size_t>(std::stoul(key.key))];
            } else {
              throw CorruptionError("parameter " + param + " is missing from the legacy aggregate file");
            }
          }
          leaf["in_aggregate"] = true;
          if (node->is_array()) {
            leaf["dtype"] = DTypeName(node->array().dtype());
            leaf["shape"] = node->array().shape();
            leaf["bytes"] = node->array().num_bytes();
            total += node->array().num_bytes();
          } else {
            leaf["value"] = node->ToString();
          }
        } else {
          const zarr::ZarrMetadata m = zarr::ReadZarrMetadata(*store, param, &check_zarr_metadata);
          formats.insert(static_cast<int>(m.format));
          const uint64_t bytes = NumBytes(m.dtype, m.shape);
          leaf["dtype"] = DTypeName(m.dtype);
          leaf["shape"] = m.shape;
          leaf["bytes"] = bytes;
          leaf["chunks"] = m.chunks;
          leaf["compression"] = m.compressed() ? ojson(m.CompressionName()) : ojson(nullptr);
          leaf["zarr_format"] = static_cast<int>(m.format);
          if (auto it = shardings.find(param); it != shardings.end()) leaf["sharding"] = it->second;
          if (stored_sizes) DescribeStored(*store, param, m, leaf);
          total += bytes;
        }
      } catch (const Error& e) {
        leaf["error"] = e.what();
      }
    }
    leaves.push_back(std::move(leaf));
  }
  layout["zarr_formats"] = formats;
  out["layout"] = std::move(layout);
  out["custom_metadata"] = tree ? ojson(tree->custom_metadata) : ojson(nullptr);
  out["bytes"] = total;
  // Delta tracking (`cairn_delta/`): the chunk bytes this step wrote and those it shares with its base.
  ojson delta = nullptr;
  try {
    if (auto record = md::ReadItemDeltaRecord(*fs, dir)) {
      delta = ojson::object();
      delta["base"] = record->base.empty() ? ojson(nullptr) : ojson(record->base);
      delta["bytes_written"] = record->bytes_written;
      delta["bytes_shared"] = record->bytes_shared;
    }
  } catch (const Error& e) {
    delta = ojson{{"error", e.what()}};
  }
  out["delta"] = std::move(delta);
  out["tree"] = std::move(leaves);
  return out;
}

ojson DescribeStep(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& step, bool stored_sizes) {
  ojson out;
  out["path"] = step.string();
  auto metadata = md::ReadCheckpointMetadata(*fs, step);
  out["step_metadata"] = metadata ? md::ParseOrderedJson(md::EncodeCheckpointMetadata(*metadata),
                                                         (step / md::kCheckpointMetadataFile).string())
                                  : ojson(nullptr);
  out["committed"] = fs->Exists(step / io::kCommitSuccessFile);
  ojson items = ojson::array();
  for (const auto& item : checkpoint::ListItems(*fs, step)) {
    ojson i;
    i["name"] = item.name;
    i["handler"] = item.handler;
    if (item.is_pytree) {
      i["kind"] = "pytree";
      const ojson described = DescribePyTree(fs, item.dir, stored_sizes);
      for (const auto& [k, v] : described.items()) i[k] = v;
    } else {
      const bool json = item.handler.find("JsonCheckpointHandler") != std::string::npos;
      i["kind"] = json ? "json" : "other";
      ojson files = ojson::object();
      for (const auto& name : fs->ListDir(item.dir)) {
        const auto path = item.dir / name;
        if (fs->IsDirectory(path) || md::IsBookkeepingFileName(name)) continue;
        if (json) {
          files[name] = md::ParseOrderedJson(fs->ReadFileBelow(item.dir, name), path.string());
        } else {
          files[name] = fs->Stat(path)->size;
        }
      }
      i["files"] = std::move(files);
    }
    items.push_back(std::move(i));
  }
  out["items"] = std::move(items);
  return out;
}

}  // namespace

nlohmann::ordered_json DescribeCheckpoint(const std::filesystem::path& path_in, const std::shared_ptr<FileSystem>& fs_in,
                                          bool stored_sizes) {
  const auto fs = fs_in ? fs_in : FileSystem::Default();
  const auto [path, kind] = checkpoint::OpenCheckpointPath(*fs, path_in);
  if (kind != checkpoint::PathKind::kRoot) {
    ojson out;
    out["path"] = path.string();
    out["kind"] = checkpoint::PathKindName(kind);
    const ojson described = DescribeStep(fs, path, stored_sizes);
    for (const auto& [k, v] : described.items()) {
      if (k != "path") out[k] = v;
    }
    return out;
  }
  ojson out;
  out["path"] = path.string();
  out["kind"] = "root";
  const auto layout = checkpoint::ListSteps(*fs, path);
  ojson steps = ojson::array();
  for (const auto& name : layout.steps) {
    ojson s;
    s["name"] = name;
    try {
      const ojson described = DescribeStep(fs, path / name, stored_sizes);
      for (const auto& [k, v] : described.items()) s[k] = v;
    } catch (const Error& e) {
      s["error"] = e.what();
    }
    steps.push_back(std::move(s));
  }
  out["steps"] = std::move(steps);
  out["unfinished"] = layout.unfinished;
  return out;
}

}  // namespace cairn
