// DescribeCheckpoint: the layout, the tree and each array's storage, from metadata files only.
#include "cairn/inspect.h"

#include <set>

#include "cairn/error.h"
#include "checkpoint/layout.h"
#include "item/reader.h"
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
  // As a restore opens it: the metadata read here is checked against the CRC-32Cs cairn recorded (none in Orbax's
  // items), and so is every value read from the store.
  item::ItemReader reader(fs, dir);
  const item::ItemLayout& found = reader.layout();
  ojson layout;
  layout["ocdbt"] = found.ocdbt;
  layout["processes"] = found.processes();
  layout["checksums"] = found.checksums;
  layout["metadata_file"] = reader.saved_tree().has_value();
  const std::vector<md::TreeMetadataEntry>& entries = reader.tree().entries;
  // Each array's sharding as `_sharding` records it (Orbax's JSON object); absent from some Orbax checkpoints.
  const std::map<std::string, nlohmann::json>& shardings = reader.Shardings();

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
          const Tree* node = &reader.AggregateValue(entry.path);
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
          const zarr::ZarrMetadata m = zarr::ReadZarrMetadata(reader.store(), param);
          formats.insert(static_cast<int>(m.format));
          const uint64_t bytes = NumBytes(m.dtype, m.shape);
          leaf["dtype"] = DTypeName(m.dtype);
          leaf["shape"] = m.shape;
          leaf["bytes"] = bytes;
          leaf["chunks"] = m.chunks;
          leaf["compression"] = m.compressed() ? ojson(m.CompressionName()) : ojson(nullptr);
          leaf["zarr_format"] = static_cast<int>(m.format);
          if (auto it = shardings.find(param); it != shardings.end()) leaf["sharding"] = it->second;
          if (stored_sizes) DescribeStored(reader.store(), param, m, leaf);
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
  out["custom_metadata"] = reader.saved_tree() ? ojson(reader.saved_tree()->custom_metadata) : ojson(nullptr);
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
          // Checked against its `cairn_<name>.crc32c`, as a restore checks it.
          files[name] = md::ParseOrderedJson(item::ReadJsonItemFile(*fs, path).value_or(""), path.string());
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
