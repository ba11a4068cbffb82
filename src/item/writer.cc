#include "item/writer.h"

#include <algorithm>
#include <mutex>
#include <set>

#include "cairn/error.h"
#include "core/byte_budget.h"
#include "core/crc32c.h"
#include "core/plain_name.h"
#include "core/snapshot_read.h"
#include "core/thread_pool.h"
#include "item/array_storage.h"
#include "item/delta_base.h"
#include "kvstore/ocdbt/random_id.h"
#include "item/layout.h"
#include "kvstore/checksummed_kvstore.h"
#include "kvstore/ocdbt/ocdbt.h"
#include "kvstore/ocdbt/writer.h"
#include "metadata/array_metadata.h"
#include "metadata/checksums.h"
#include "metadata/delta_record.h"
#include "metadata/tree_metadata.h"
#include "zarr/chunk_shape.h"
#include "zarr/zarr_array.h"

namespace cairn::item {
namespace {

namespace md = metadata;

// Orbax's OCDBT target data file size (2 GiB): also the cap on a chunk.
constexpr int64_t kDefaultTargetDataFileSize = int64_t{2} << 30;
const std::optional<CheckpointHandler::DeltaBase> kNoDelta;

// Keys become parameter names, file names and OCDBT keys: refuse any that could not round-trip or could
// leave the checkpoint directory.
void CheckKey(const KeyPath& path) {
  for (const auto& entry : path) {
    if (!IsPlainName(entry.key)) {
      throw InvalidArgumentError("tree key " + KeyPathToString(path) + " cannot be saved: " + kPlainNameRule);
    }
  }
}

const SaveArgs* FindArgs(const SaveArgsMap& map, const std::string& param) {
  if (auto it = map.find(param); it != map.end()) return &it->second;
  if (auto it = map.find(""); it != map.end()) return &it->second;
  return nullptr;
}

// A scalar is stored as a 0-d array of the type NumPy gives a Python scalar.
Array ScalarToArray(const Tree::ScalarValue& value) {
  return std::visit([](auto v) { return Array::FromScalar(v); }, value);
}

struct ArrayWrite {
  std::string param;
  zarr::ZarrMetadata metadata;
  Array data;            // one box of the array (the whole array for unsharded leaves)
  Shape origin;          // where the box starts
  bool write_metadata;   // the array's `.zarray`/`zarr.json` goes with this write
};

// What the item will hold, decided per leaf before anything is written.
struct ItemPlan {
  md::TreeMetadata tree_metadata;
  std::vector<std::pair<std::string, std::string>> shardings;  // param -> `_sharding` value
  std::vector<md::ArrayMetadataEntry> array_metadatas;          // this process's `array_metadatas/process_<i>`
  nlohmann::ordered_json strings = nlohmann::ordered_json::object();
  std::vector<ArrayWrite> writes;
};

// Step 1: one storage decision per leaf (array, scalar, string, placeholder, empty node), and the zarr metadata of
// each array: dtype, chunk shape (ChooseChunkShape), compression.
ItemPlan PlanItem(const PyTreeCheckpointHandlerOptions& options, bool primary, const SaveRequest& request) {
  const int64_t target_file_size = request.ocdbt_target_data_file_size.value_or(kDefaultTargetDataFileSize);
  ItemPlan plan;
  md::TreeMetadata& tree_metadata = plan.tree_metadata;
  tree_metadata.use_ocdbt = options.use_ocdbt;
  tree_metadata.use_zarr3 = options.use_zarr3;
  tree_metadata.custom_metadata = request.custom_metadata;
  auto& shardings = plan.shardings;
  auto& array_metadatas = plan.array_metadatas;
  auto& strings = plan.strings;
  auto& writes = plan.writes;
  std::set<std::string> params_seen;

  auto zarr_metadata = [&](const std::string& param, DType dtype, const Shape& global, const Shape& write_shape) {
    const SaveArgs* save_args = FindArgs(request.save_args, param);
    std::optional<int64_t> chunk_target = save_args ? save_args->chunk_byte_size : std::nullopt;
    if (chunk_target) chunk_target = std::min(*chunk_target, target_file_size);
    else if (static_cast<int64_t>(NumBytes(dtype, write_shape)) > target_file_size) chunk_target = target_file_size;
    zarr::ZarrMetadata zmeta;
    zmeta.format = options.use_zarr3 ? zarr::ZarrFormat::kV3 : zarr::ZarrFormat::kV2;
    zmeta.dtype = dtype;
    zmeta.shape = global;
    // A divisor of the shard shape, so that every process's boxes tile the chunk grid.
    zmeta.chunks = zarr::ChooseChunkShape(global, write_shape, dtype, chunk_target);
    if (options.use_compression) {
      if (options.compressor == "zstd") {
        zmeta.zstd_level = options.use_zarr3 ? 3 : 1;
      } else {
        // TensorStore's defaults (clevel 5, blocksize chosen by blosc), with byte shuffle: what it writes for
        // {"id": "blosc", "cname": ..., "shuffle": 1}.
        zarr::BloscConfig blosc;
        blosc.cname = options.compressor.substr(6);
        blosc.shuffle = 1;
        if (options.use_zarr3) blosc.typesize = static_cast<int>(ItemSize(dtype));
        zmeta.blosc = blosc;
      }
    }
    return zmeta;
  };
  // SaveArgs::sharding, checked: it goes into `_sharding`, which Orbax parses.
  auto sharding_json = [&](const std::string& param) -> std::optional<std::string> {
    const SaveArgs* save_args = FindArgs(request.save_args, param);
    if (!save_args || !save_args->sharding) return std::nullopt;
    const auto parsed = nlohmann::json::parse(*save_args->sharding, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_object() || !parsed.contains("sharding_type")) {
      throw InvalidArgumentError("SaveArgs.sharding of parameter " + param +
                                 " is not an Orbax sharding (a JSON object with \"sharding_type\")");
    }
    return save_args->sharding;
  };
  auto stored_dtype = [&](const std::string& param, DType dtype) {
    const SaveArgs* save_args = FindArgs(request.save_args, param);
    return save_args && save_args->dtype ? *save_args->dtype : dtype;
  };

  for (const auto& [path, leaf] : request.item.Flatten(/*include_empty_nodes=*/true)) {
    CheckKey(path);
    const std::string param = ParamName(path);
    if (!params_seen.insert(param).second) {
      throw InvalidArgumentError("two tree paths map to the parameter name \"" + param +
                                 "\" (keys joined with '.'); rename one of them");
    }
    md::TreeMetadataEntry entry{path, "", false, std::nullopt};
    switch (leaf.kind()) {
      case Tree::Kind::kNone: entry.value_type = md::kNone; entry.skip_deserialize = true; break;
      case Tree::Kind::kDict: entry.value_type = md::kEmptyDict; entry.skip_deserialize = true; break;
      case Tree::Kind::kList: entry.value_type = md::kEmptyList; entry.skip_deserialize = true; break;
      case Tree::Kind::kTuple: entry.value_type = md::kEmptyTuple; entry.skip_deserialize = true; break;
      case Tree::Kind::kPlaceholder: entry.value_type = md::kPlaceholderType; entry.skip_deserialize = true; break;
      case Tree::Kind::kString: entry.value_type = md::kString; strings[param] = leaf.string(); break;
      case Tree::Kind::kArraySpec:
      case Tree::Kind::kShardedArraySpec:
        throw InvalidArgumentError("parameter " + param + " is a spec, which has no data to save");
      case Tree::Kind::kScalar:
      case Tree::Kind::kArray: {
        const bool scalar = leaf.is_scalar();
        Array array = scalar ? ScalarToArray(leaf.scalar_value()) : leaf.array();
        zarr::ZarrMetadata zmeta = zarr_metadata(param, stored_dtype(param, array.dtype()), array.shape(), array.shape());
        entry.value_type = scalar ? md::kScalar : md::kJaxArray;
        if (!scalar) {
          entry.write_shape = array.shape();
          shardings.emplace_back(param, sharding_json(param).value_or(md::kSingleDeviceShardingJson));
          if (primary) array_metadatas.push_back({param, array.shape(), zmeta.chunks});
        }
        if (primary) {
          Shape origin(array.shape().size(), 0);
          writes.push_back({param, std::move(zmeta), std::move(array), std::move(origin), true});
        }
        break;
      }
      case Tree::Kind::kShardedArray: {
        const ShardedArray& sharded = leaf.sharded_array();
        // Every process must derive the same write shape: take it from the sharding when there is one.
        Shape write_shape = sharded.sharding()   ? sharded.sharding()->BoxFor(sharded.global_shape(), 0).shape
                            : !sharded.shards().empty() ? sharded.shards().front().box.shape
                                                        : sharded.global_shape();
        zarr::ZarrMetadata zmeta =
            zarr_metadata(param, stored_dtype(param, sharded.dtype()), sharded.global_shape(), write_shape);
        entry.value_type = md::kJaxArray;
        entry.write_shape = write_shape;
        if (auto given = sharding_json(param)) shardings.emplace_back(param, *given);
        else if (sharded.sharding()) shardings.emplace_back(param, sharded.sharding()->ToOrbaxJson());
        bool metadata_written = false;
        for (const Shard& shard : sharded.shards()) {
          if (shard.replica_id != 0) continue;  // another process writes this box
          array_metadatas.push_back({param, shard.box.shape, zmeta.chunks});
          writes.push_back({param, zmeta, shard.data, shard.box.origin, primary && !metadata_written});
          metadata_written = metadata_written || primary;
        }
        if (primary && !metadata_written) writes.push_back({param, zmeta, Array(), {}, true});
        break;
      }
    }
    tree_metadata.entries.push_back(std::move(entry));
  }
  return plan;
}

// Step 2: the store every value of this process goes through (a delta save's base is read and checked here, before
// anything is written). A ChecksummedKvStore records the CRC-32C of each value for `cairn_checksums/`; in a delta
// save (docs/format.md, "Delta steps") the OCDBT writer beneath it shares unchanged chunks with the base's data
// files. Without OCDBT there are no references to share through: such an item is written in full.
class ItemStore {
 public:
  ItemStore(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& directory,
            const PyTreeCheckpointHandlerOptions& options, const Writer& writer, const SaveRequest& request)
      : delta_(options.use_ocdbt ? writer.delta : kNoDelta) {
    DeltaBase base;
    // With several processes, each one's `ocdbt.process_<i>/` shares with whichever of the base's data files hold
    // its boxes' unchanged chunks (the merge then builds the root over them as over any process's files).
    if (delta_ && !delta_->item_dir.empty()) base = LoadDeltaBase(fs, delta_->item_dir);
    std::unique_ptr<kvstore::KvStore> array_store =
        OpenArrayStoreForWrite(fs, directory, options, writer.process, request.ocdbt_target_data_file_size);
    delta_writer_ = delta_ ? dynamic_cast<kvstore::OcdbtWriter*>(array_store.get()) : nullptr;
    if (delta_writer_) {
      delta_writer_->EnableDelta(base.index, delta_->max_changed_fraction);
      delta_save_.emplace(fs, delta_->item_dir, std::move(base), *delta_writer_);
    }
    store_ = std::make_shared<kvstore::ChecksummedKvStore>(std::move(array_store));
  }

  kvstore::ChecksummedKvStore& store() { return *store_; }
  // Set in a delta save.
  DeltaSave* delta_save() { return delta_save_ ? &*delta_save_ : nullptr; }
  const std::optional<CheckpointHandler::DeltaBase>& delta() const { return delta_; }
  kvstore::OcdbtWriter* delta_writer() { return delta_writer_; }

 private:
  const std::optional<CheckpointHandler::DeltaBase>& delta_;
  kvstore::OcdbtWriter* delta_writer_ = nullptr;
  std::optional<DeltaSave> delta_save_;
  std::shared_ptr<kvstore::ChecksummedKvStore> store_;
};

// Step 3: every array write of the plan, cast, chunked, compressed and stored in parallel; each worker holds one
// chunk at a time, so the bytes in flight stay within (threads x chunk size) on top of the arrays themselves.
// Returns the CRC-32Cs the store recorded.
md::Checksums EncodeAndWriteChunks(const ItemPlan& plan, const PyTreeCheckpointHandlerOptions& options,
                                   const Writer& writer, const SaveRequest& request, ItemStore& item_store) {
  kvstore::ChecksummedKvStore& store = item_store.store();
  DeltaSave* delta_save = item_store.delta_save();
  // save_concurrent_gb bounds the bytes being cast and encoded at once (an array, or one box of it).
  ByteBudget budget(static_cast<uint64_t>(std::max<int64_t>(options.save_concurrent_gb, 1)) << 30);
  // Parameters declared frozen (SaveArgs::frozen), and Array::FromShared buffers this handler saved in the base, take
  // every chunk from the base, unread and unhashed; their CRCs come from the base's checksums, so restores and
  // `cairn verify` still check every byte this step references. The other chunks are digested before encoding and
  // shared with the base when unchanged (delta_base.h).
  auto take_whole = [&](const ArrayWrite& w) {
    if (!delta_save) return false;
    const SaveArgs* save_args = FindArgs(request.save_args, w.param);
    const bool frozen = save_args && save_args->frozen;
    const bool known = !frozen && writer.saved_buffers && w.data.shape() == w.metadata.shape &&
                       writer.saved_buffers->Unchanged(delta_save->base().save_id, w.param, w.data);
    return (frozen || known) && delta_save->TakeBox(w.param, w.metadata, w.origin, w.data.shape(), frozen, store);
  };
  ParallelFor(plan.writes.size(), [&](size_t i) {
    const ArrayWrite& w = plan.writes[i];
    if (w.write_metadata) zarr::WriteZarrMetadata(store, w.param, w.metadata);
    if (w.origin.size() != w.metadata.shape.size()) return;  // metadata only
    if (take_whole(w)) return;
    ByteBudget::Hold hold(budget, w.data.num_bytes());
    // An asynchronous save's copy-on-write snapshot: the bytes are read only inside this scope.
    const SnapshotRead read(w.data);
    const Array data = read.array().dtype() == w.metadata.dtype ? read.array() : read.array().Cast(w.metadata.dtype);
    const zarr::RawChunkFilter unchanged = delta_save ? delta_save->ChunkFilter(w.param, w.metadata, store) : nullptr;
    zarr::WriteZarrChunks(store, w.param, w.metadata, data, w.origin, delta_save ? &unchanged : nullptr);
  });
  store.Flush();
  md::Checksums checksums;
  checksums.chunks = std::move(store.recorded().whole);
  checksums.chunk_blocks = std::move(store.recorded().blocks);
  return checksums;
}

// Step 4: this process's `array_metadatas/process_<i>`; the primary's `_strings.json`, `_sharding` and `_METADATA`.
// Each file's CRC-32C goes into `checksums`.
void WriteMetadataFiles(FileSystem& fs, const std::filesystem::path& directory, const Writer& writer,
                        const ItemPlan& plan, md::Checksums& checksums) {
  auto write_file = [&](const std::string& relative, const std::string& text) {
    fs.WriteFile(directory / relative, text, /*sync=*/true);
    checksums.files[relative] = Crc32c(text);
  };
  fs.CreateDirs(directory / kArrayMetadatasDir);
  write_file(std::string(kArrayMetadatasDir) + "/" + ProcessFile(writer.process),
             md::EncodeArrayMetadatas(plan.array_metadatas));
  if (writer.primary) {
    if (!plan.strings.empty()) write_file(kStringsFile, plan.strings.dump());
    write_file(kShardingFile, md::EncodeShardingFile(plan.shardings));
    write_file(kTreeMetadataFile, md::EncodeTreeMetadata(plan.tree_metadata));
  }
}

// A delta save's `cairn_delta/process_<i>` (what was written, what shared); the whole arrays given as
// Array::FromShared buffers are remembered under its save id, for the next save to take unread.
void WriteDeltaRecord(FileSystem& fs, const std::filesystem::path& directory, const Writer& writer,
                      const ItemPlan& plan, ItemStore& item_store) {
  const kvstore::ocdbt::DeltaRecord written = item_store.delta_writer()->delta_record();
  md::DeltaRecordFile record_file{written.sha256,        written.raw_sha256,   written.raw_crc32c,
                                  written.bytes_written, written.bytes_shared, item_store.delta()->item_dir.string(),
                                  kvstore::ocdbt::ToLowerHex(kvstore::ocdbt::RandomId128())};
  fs.CreateDirs(directory / kDeltaDir);
  fs.WriteFile(directory / kDeltaDir / ProcessFile(writer.process), md::EncodeDeltaRecord(record_file),
               /*sync=*/true);
  if (writer.saved_buffers) {
    std::map<std::string, Array> whole_arrays;
    for (const ArrayWrite& w : plan.writes) {
      if (w.origin.size() == w.metadata.shape.size() && w.data.shape() == w.metadata.shape) {
        whole_arrays.emplace(w.param, w.data);
      }
    }
    writer.saved_buffers->Remember(record_file.save_id, whole_arrays);
  }
}

}  // namespace

void WriteItem(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& directory,
               const PyTreeCheckpointHandlerOptions& options, const Writer& writer, const SaveRequest& request) {
  const ItemPlan plan = PlanItem(options, writer.primary, request);
  ItemStore item_store(fs, directory, options, writer, request);
  md::Checksums checksums = EncodeAndWriteChunks(plan, options, writer, request, item_store);
  WriteMetadataFiles(*fs, directory, writer, plan, checksums);
  if (item_store.delta_writer()) WriteDeltaRecord(*fs, directory, writer, plan, item_store);
  // Last: the CRC-32C of every value and metadata file above.
  fs->CreateDirs(directory / kChecksumsDir);
  fs->WriteFile(directory / kChecksumsDir / ProcessFile(writer.process), md::EncodeChecksums(checksums),
                /*sync=*/true);
}

}  // namespace cairn::item
