// PyTreeCheckpointHandler: a Tree saved as Orbax's base_pytree_checkpoint_handler saves it.
//
// Save: flatten (empty nodes included) -> one storage decision per leaf (array, scalar, string, placeholder,
// empty node) -> zarr arrays in the item's KvStore, strings in `_strings.json` -> `_METADATA`, `_sharding`,
// `array_metadatas/process_0`. Restore runs backwards, reading only the leaves (and chunks) the target needs.
#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <set>

#include "cairn/error.h"
#include "cairn/handlers.h"
#include "core/byte_budget.h"
#include "core/crc32c.h"
#include "core/thread_pool.h"
#include "handlers/array_storage.h"
#include "handlers/delta_base.h"
#include "kvstore/ocdbt/writer.h"
#include "metadata/delta_record.h"
#include "handlers/synthesized_metadata.h"
#include "metadata/array_metadata.h"
#include "metadata/checksums.h"
#include "metadata/legacy_aggregate.h"
#include "metadata/python_json.h"
#include "metadata/tree_metadata.h"
#include "core/box_copy.h"
#include "zarr/chunk_shape.h"
#include "zarr/zarr_array.h"

namespace cairn {
namespace {

namespace md = metadata;

constexpr const char* kStringsFile = "_strings.json";
// Orbax's OCDBT target data file size (2 GiB): also the cap on a chunk.
constexpr int64_t kDefaultTargetDataFileSize = int64_t{2} << 30;

// Keys become parameter names, file names and OCDBT keys: refuse any that could not round-trip or could
// leave the checkpoint directory.
void CheckKey(const KeyPath& path) {
  for (const auto& entry : path) {
    const std::string& key = entry.key;
    if (key.empty() || key == "." || key == ".." || key.find('/') != std::string::npos ||
        key.find('\0') != std::string::npos || key.find('\\') != std::string::npos) {
      throw InvalidArgumentError("tree key " + KeyPathToString(path) +
                                 " cannot be saved: keys must be non-empty and contain no '/', '\\' or NUL, and "
                                 "may not be '.' or '..'");
    }
  }
}

const SaveArgs* FindArgs(const SaveArgsMap& map, const std::string& param) {
  if (auto it = map.find(param); it != map.end()) return &it->second;
  if (auto it = map.find(""); it != map.end()) return &it->second;
  return nullptr;
}
const RestoreArgs* FindArgs(const RestoreArgsMap& map, const std::string& param) {
  if (auto it = map.find(param); it != map.end()) return &it->second;
  if (auto it = map.find(""); it != map.end()) return &it->second;
  return nullptr;
}

// A scalar is stored as a 0-d array of the type NumPy gives a Python scalar.
Array ScalarToArray(const Tree::ScalarValue& value) {
  return std::visit([](auto v) { return Array::FromScalar(v); }, value);
}

Tree ArrayToScalar(const Array& array, const Tree::ScalarValue* like) {
  Tree probe(array);
  if (like) {
    return std::visit([&](auto v) { return Tree::Scalar(probe.scalar<decltype(v)>()); }, *like);
  }
  if (array.dtype() == DType::kBool) return Tree::Scalar(probe.scalar<bool>());
  if (IsInteger(array.dtype())) return Tree::Scalar(probe.scalar<int64_t>());
  return Tree::Scalar(probe.scalar<double>());
}

// `array` cast to `dtype` and cut or zero-padded at the high end of each dimension to `shape` (the in-memory
// counterpart of zarr::ReadZarrRegion, for values held in the legacy aggregate file).
Array FitArray(const Array& array, const Shape& shape, DType dtype) {
  if (array.shape() == shape) return array.dtype() == dtype ? array : array.Cast(dtype);
  Array cast = array.dtype() == dtype ? array : array.Cast(dtype);
  Array out = Array::Zeros(dtype, shape);
  Shape extent(shape.size()), origin(shape.size(), 0);
  for (size_t d = 0; d < shape.size(); ++d) extent[d] = std::min(shape[d], cast.shape()[d]);
  CopyBox(cast.bytes().data(), cast.shape(), origin, out.mutable_bytes().data(), shape, origin, extent,
                ItemSize(dtype));
  return out;
}

// std::call_once, minus its trouble with exceptions: a load that throws (a damaged or unreadable file) must let
// the next caller try again, and with std::call_once that hangs the other callers where pthread_once is
// intercepted (ThreadSanitizer; found by RestoreFaultInjection.EveryFailedReadCall).
class OnceLoader {
 public:
  template <typename Fn>
  void Run(Fn&& fn) {
    std::lock_guard lock(mu_);
    if (done_) return;
    fn();
    done_ = true;
  }

 private:
  std::mutex mu_;
  bool done_ = false;
};

struct ItemReader {
  ItemReader(const ItemReader&) = delete;  // its checkers capture `this`
  ItemReader& operator=(const ItemReader&) = delete;
  ItemReader(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& dir, bool verify_checksums)
      : fs(fs), dir(dir) {
    if (verify_checksums) LoadChecksums();
    auto metadata_path = dir / md::kTreeMetadataFile;
    if (fs->Exists(metadata_path)) {
      tree = md::DecodeTreeMetadata(ReadChecked(md::kTreeMetadataFile), metadata_path.string());
    }
    // (A `_METADATA` that cairn saved and that has gone missing is caught by LoadChecksums: without it the tree
    // would be rebuilt from the arrays, as for Orbax checkpoints that have none.)
    store = handlers::OpenArrayStoreForRead(fs, dir, tree ? tree->use_ocdbt : std::nullopt);
    if (!tree) {
      if (!fs->IsDirectory(dir)) throw NotFoundError("checkpoint item " + dir.string() + " does not exist");
      tree = handlers::SynthesizeTreeMetadata(*store, Strings(), Aggregate());
      if (tree->entries.empty()) {
        throw NotFoundError("checkpoint item " + dir.string() + " has no " + md::kTreeMetadataFile +
                            " and no arrays: nothing to restore");
      }
    }
  }

  // Every `cairn_checksums/process_*` file (checkpoints cairn wrote have one per process; Orbax's have none).
  void LoadChecksums() {
    if (!fs->IsDirectory(dir / md::kChecksumsDir)) return;  // nothing to check: no checker, no CRCs computed
    checksums = md::ReadItemChecksums(*fs, dir);
    // A metadata file recorded at save time must still be there (a missing `_sharding` or `array_metadatas/` file
    // would otherwise pass unnoticed: both are optional in Orbax's format).
    for (const auto& [relative, crc] : checksums.files) {
      if (!fs->Exists(dir / relative)) {
        throw CorruptionError((dir / relative).string() + " is missing, though it was saved (it is recorded in " +
                              (dir / md::kChecksumsDir).string() + ")");
      }
    }
    verify = [this](const std::string& key, std::string_view stored, const uint32_t* crc) {
      auto it = checksums.chunks.find(key);
      if (it != checksums.chunks.end() && (crc ? *crc : Crc32c(stored)) != it->second) {
        throw CorruptionError("chunk " + key + " fails its CRC-32C check: the stored bytes are not the ones that were "
                              "saved [" + store->DescribeKey(key) + "]");
      }
    };
  }

  // A metadata file of the item, checked against its CRC-32C when one was recorded.
  std::string ReadChecked(const std::string& relative) { return md::ReadItemFile(*fs, dir, relative, checksums); }

  const zarr::ChunkObserver* verifier() const { return verify ? &verify : nullptr; }

  // The block checksums of a chunk, for range reads: recorded ones, or the whole-chunk CRC of a chunk no longer
  // than one block (its only block). nullopt when there is nothing to check (Orbax's checkpoints; verification
  // off).
  const zarr::ChunkBlockLookup* block_checksums() const { return verify ? &block_lookup : nullptr; }
  const zarr::ChunkBlockLookup block_lookup = [this](const std::string& key, uint64_t chunk_bytes)
      -> std::optional<zarr::ChunkBlockChecksums> {
    if (auto it = checksums.chunk_blocks.find(key); it != checksums.chunk_blocks.end()) {
      return zarr::ChunkBlockChecksums{md::kChecksumBlockBytes, it->second};
    }
    auto whole = checksums.chunks.find(key);
    if (whole == checksums.chunks.end() || chunk_bytes > md::kChecksumBlockBytes) return std::nullopt;
    return zarr::ChunkBlockChecksums{md::kChecksumBlockBytes, {whole->second}};
  };

  // The boxes a ShardedArraySpec asks for, each read from only the chunks it overlaps.
  Tree ReadBoxes(const std::string& param, const Tree* held, const std::optional<zarr::ZarrMetadata>& zmeta,
                 const ShardedArraySpec& spec, const RestoreArgs* restore_args, bool strict) {
    const Shape stored_shape = held ? held->array().shape() : zmeta->shape;
    if (spec.global_shape != stored_shape && (strict || spec.global_shape.size() != stored_shape.size())) {
      throw InvalidArgumentError("parameter " + param + ": the checkpoint holds shape " + ShapeToString(stored_shape) +
                                 " but the target asks for global shape " + ShapeToString(spec.global_shape) +
                                 (strict ? " (restore with strict=false to pad or truncate)" : ""));
    }
    const DType dtype = restore_args && restore_args->dtype ? *restore_args->dtype : spec.dtype;
    std::vector<Shard> shards;
    for (const Box& box : spec.boxes) {
      Array data = held ? FitArray(held->array(), stored_shape, dtype)  // (legacy aggregates: whole arrays only)
                        : zarr::ReadZarrRegion(*store, param, *zmeta, box.origin, box.shape, dtype, verifier(),
                                                               block_checksums());
      if (held) {
        Array cut = Array::Zeros(dtype, box.shape);
        Shape extent(box.shape.size());
        for (size_t d = 0; d < extent.size(); ++d) {
          extent[d] = std::max<int64_t>(0, std::min(box.shape[d], stored_shape[d] - box.origin[d]));
        }
        CopyBox(data.bytes().data(), stored_shape, box.origin, cut.mutable_bytes().data(), box.shape,
                Shape(box.shape.size(), 0), extent, ItemSize(dtype));
        data = std::move(cut);
      }
      shards.push_back(Shard{box, 0, std::move(data)});
    }
    return Tree(ShardedArray(dtype, spec.global_shape, std::move(shards)));
  }

  // The legacy msgpack aggregate file's tree; None when there is no such file.
  const Tree& Aggregate() {
    aggregate_once.Run([&] {
      auto path = dir / md::kLegacyAggregateFile;
      if (fs->Exists(path) && !fs->IsDirectory(path)) {
        aggregate = md::DecodeMsgpackAggregate(
            fs->ReadFileBelow(dir, md::kLegacyAggregateFile, md::kMaxAggregateFileBytes), path.string());
      }
    });
    return aggregate;
  }

  // The aggregate file's value at `path` (sequence levels may be lists or dicts keyed '0', '1', ...).
  const Tree& AggregateValue(const KeyPath& path) {
    const Tree* node = &Aggregate();
    if (node->is_none()) {
      throw NotFoundError("parameter " + ParamName(path) + " of " + dir.string() + " is stored in the legacy " +
                          md::kLegacyAggregateFile + " file, which is missing");
    }
    for (const auto& entry : path) {
      if (node->is_dict() && node->contains(entry.key)) {
        node = &(*node)[entry.key];
      } else if (node->is_sequence() && entry.type == KeyType::kSequence &&
                 std::all_of(entry.key.begin(), entry.key.end(), ::isdigit) && entry.key.size() < 10 &&
                 std::stoul(entry.key) < node->size()) {
        node = &(*node)[static_cast<size_t>(std::stoul(entry.key))];
      } else {
        throw CorruptionError("parameter " + ParamName(path) + " is missing from " +
                              (dir / md::kLegacyAggregateFile).string());
      }
    }
    return *node;
  }

  // `_sharding` and `array_metadatas/process_*`, when present: read, checked for form, and held against the
  // zarr metadata of every array restored.
  void LoadArrayFacts() {
    facts_once.Run([&] {
      auto sharding_path = dir / md::kShardingFile;
      if (fs->Exists(sharding_path)) shardings = md::DecodeSharding(ReadChecked(md::kShardingFile), sharding_path.string());
      auto metadatas_dir = dir / md::kArrayMetadatasDir;
      if (fs->IsDirectory(metadatas_dir)) {
        for (const auto& name : fs->ListDir(metadatas_dir)) {
          auto path = metadatas_dir / name;
          const std::string relative = std::string(md::kArrayMetadatasDir) + "/" + name;
          for (auto& [param, entry] : md::DecodeArrayMetadatas(ReadChecked(relative), path.string())) {
            array_facts[param] = {std::move(entry), path.string()};
          }
        }
      }
    });
  }

  void CheckArrayFacts(const std::string& param, const zarr::ZarrMetadata& zmeta) {
    LoadArrayFacts();
    auto it = array_facts.find(param);
    if (it == array_facts.end()) return;
    const auto& [entry, file] = it->second;
    if (entry.chunk_shape.size() != zmeta.shape.size() || entry.write_shape.size() != zmeta.shape.size()) {
      throw CorruptionError(file + ": parameter " + param + " has write shape " + ShapeToString(entry.write_shape) +
                            " and chunk shape " + ShapeToString(entry.chunk_shape) + ", which do not fit its rank-" +
                            std::to_string(zmeta.shape.size()) + " zarr array");
    }
  }

  const nlohmann::json& Strings() {
    strings_once.Run([&] {
      auto path = dir / kStringsFile;
      if (fs->Exists(path)) strings = md::ParseJson(ReadChecked(kStringsFile), path.string());
    });
    return strings;
  }

  // The value stored for `entry`, shaped by `target` (None: as saved) and `restore_args`.
  Tree Read(const md::TreeMetadataEntry& entry, const Tree& target, const RestoreArgs* restore_args, bool strict) {
    const std::string param = ParamName(entry.path);
    const std::string& type = entry.value_type;
    if (target.is_placeholder() || type == md::kPlaceholderType) return Tree::Placeholder();
    if (md::IsEmptyNodeType(type)) return md::EmptyNodeValue(type);
    if (type == md::kString) {
      const auto& all = Strings();
      if (!all.is_object() || !all.contains(param) || !all[param].is_string()) {
        throw CorruptionError("string parameter " + param + " is missing from " + (dir / kStringsFile).string());
      }
      return Tree(all[param].get<std::string>());
    }
    if (type != md::kJaxArray && type != md::kNumpyArray && type != md::kScalar) {
      throw UnimplementedError("parameter " + param + " has value type \"" + type + "\", which cairn cannot restore");
    }
    if (target.is_string() || target.is_dict() || target.is_sequence()) {
      throw InvalidArgumentError("parameter " + param + " is an array in the checkpoint but the target holds a " +
                                 (target.is_string() ? "string" : "container") + " there");
    }
    // Older checkpoints keep some values in the msgpack aggregate file (skip_deserialize marks them).
    const Tree* held = nullptr;
    if (entry.skip_deserialize) {
      held = &AggregateValue(entry.path);
      if (held->is_scalar() || held->is_string() || held->is_none()) {
        if (target.is_none() || target.is_scalar() || target.is_string()) return *held;
        throw InvalidArgumentError("parameter " + param + " is a " + held->ToString() +
                                   " in the checkpoint's aggregate file, not an array");
      }
      if (!held->is_array()) throw CorruptionError("parameter " + param + " in the aggregate file is not an array");
    }
    std::optional<zarr::ZarrMetadata> zmeta;
    if (!held) {
      zmeta = zarr::ReadZarrMetadata(*store, param, verifier());
      CheckArrayFacts(param, *zmeta);
    }
    if (target.is_sharded_spec()) return ReadBoxes(param, held, zmeta, target.sharded_spec(), restore_args, strict);
    if (target.is_sharded_array()) {  // a sharded array as the target: its boxes and dtype
      ShardedArraySpec spec{target.sharded_array().dtype(), target.sharded_array().global_shape(), {}};
      for (const Shard& shard : target.sharded_array().shards()) spec.boxes.push_back(shard.box);
      return ReadBoxes(param, held, zmeta, spec, restore_args, strict);
    }
    const Shape stored_shape = held ? held->array().shape() : zmeta->shape;
    Shape shape = stored_shape;
    DType dtype = held ? held->array().dtype() : zmeta->dtype;
    if (target.is_array() || target.is_spec()) {
      ArraySpec spec = target.array_spec();
      dtype = spec.dtype;
      if (spec.shape != stored_shape) {
        if (strict) {
          throw InvalidArgumentError("parameter " + param + ": the checkpoint holds shape " +
                                     ShapeToString(stored_shape) + " but the target asks for " +
                                     ShapeToString(spec.shape) + " (restore with strict=false to pad or truncate)");
        }
        if (spec.shape.size() != stored_shape.size()) {
          throw InvalidArgumentError("parameter " + param + ": cannot restore rank-" +
                                     std::to_string(stored_shape.size()) + " data into a rank-" +
                                     std::to_string(spec.shape.size()) + " target, even with strict=false");
        }
        shape = spec.shape;
      }
    }
    if (restore_args && restore_args->dtype) dtype = *restore_args->dtype;
    Array array = held ? FitArray(held->array(), shape, dtype)
                       : zarr::ReadZarrRegion(*store, param, *zmeta, Shape(shape.size(), 0), shape, dtype,
                                                verifier(), block_checksums());
    if (target.is_scalar()) return ArrayToScalar(array, &target.scalar_value());
    if (target.is_none() && type == md::kScalar && array.rank() == 0) return ArrayToScalar(array, nullptr);
    return Tree(std::move(array));
  }

  std::shared_ptr<FileSystem> fs;
  std::filesystem::path dir;
  std::optional<md::TreeMetadata> tree;
  std::unique_ptr<kvstore::KvStore> store;
  // Loaded on first use, from whichever thread needs them first (leaves are read in parallel).
  OnceLoader strings_once;
  nlohmann::json strings;
  OnceLoader aggregate_once;
  Tree aggregate;
  md::Checksums checksums;
  zarr::ChunkObserver verify;  // empty: no checksums to check
  OnceLoader facts_once;
  std::map<std::string, nlohmann::json> shardings;
  std::map<std::string, std::pair<md::ArrayMetadataEntry, std::string>> array_facts;
};

}  // namespace

PyTreeCheckpointHandler::PyTreeCheckpointHandler(PyTreeCheckpointHandlerOptions options) : options_(options) {
  const std::string& c = options_.compressor;
  if (c != "zstd" && c != "blosc-lz4" && c != "blosc-zstd") {
    throw InvalidArgumentError("compressor \"" + c + "\" is not one cairn writes (zstd, blosc-lz4, blosc-zstd)");
  }
}

std::string PyTreeCheckpointHandler::typestr() const {
  return "orbax.checkpoint._src.handlers.pytree_checkpoint_handler.PyTreeCheckpointHandler";
}

void PyTreeCheckpointHandler::save(const HandlerDirectory& directory, const CheckpointArgs& args) {
  const auto& a = ArgsAs<args::PyTreeSave>(args, "PyTreeCheckpointHandler");
  Save(directory, SaveRequest{a.item, a.save_args, a.custom_metadata, a.ocdbt_target_data_file_size});
}

Tree PyTreeCheckpointHandler::restore(const HandlerDirectory& directory, const CheckpointArgs* args) {
  if (!args) return Restore(directory, RestoreRequest{});
  const auto& a = ArgsAs<args::PyTreeRestore>(*args, "PyTreeCheckpointHandler");
  return Restore(directory, RestoreRequest{a.item, a.restore_args, a.partial_restore, a.strict});
}

void PyTreeCheckpointHandler::Save(const HandlerDirectory& directory, const SaveRequest& request) {
  auto& file_system = directory.fs();
  // Orbax's division of labour: every process writes the unique shards it holds (replica 0) into its own
  // `ocdbt.process_<i>/`; the primary also writes whole (unsharded) arrays, scalars, strings and every
  // metadata file. All processes hold the same tree, so they agree on the metadata without talking.
  const int process = directory.process_index();
  const bool primary = directory.is_primary();
  const int64_t target_file_size = request.ocdbt_target_data_file_size.value_or(kDefaultTargetDataFileSize);
  // A delta save (docs/format.md, "Delta steps"): the base is read and checked before anything is written.
  // Without OCDBT there are no references to share through: such an item is written in full.
  const std::optional<DeltaBase> delta = options_.use_ocdbt ? directory.delta_base() : std::nullopt;
  handlers::DeltaBase base;
  if (delta) {
    if (directory.process_count() > 1) {
      throw UnimplementedError("delta saves of multi-process checkpoints are not supported yet (" +
                               std::to_string(directory.process_count()) + " processes): save in full");
    }
    if (!delta->item_dir.empty()) base = handlers::LoadDeltaBase(directory.fs_ptr(), delta->item_dir);
  }
  auto store = handlers::OpenArrayStoreForWrite(directory.fs_ptr(), directory, options_, process,
                                                request.ocdbt_target_data_file_size);
  auto* delta_writer = delta ? dynamic_cast<kvstore::OcdbtWriter*>(store.get()) : nullptr;
  if (delta_writer) delta_writer->EnableDelta(base.index, delta->max_changed_fraction);

  md::TreeMetadata tree_metadata;
  tree_metadata.use_ocdbt = options_.use_ocdbt;
  tree_metadata.use_zarr3 = options_.use_zarr3;
  tree_metadata.custom_metadata = request.custom_metadata;
  std::vector<std::pair<std::string, std::string>> shardings;  // param -> `_sharding` value
  std::vector<md::ArrayMetadataEntry> array_metadatas;          // this process's `array_metadatas/process_<i>`
  nlohmann::ordered_json strings = nlohmann::ordered_json::object();
  std::set<std::string> params_seen;
  struct ArrayWrite {
    std::string param;
    zarr::ZarrMetadata metadata;
    Array data;            // one box of the array (the whole array for unsharded leaves)
    Shape origin;          // where the box starts
    bool write_metadata;   // the array's `.zarray`/`zarr.json` goes with this write
  };
  std::vector<ArrayWrite> writes;

  auto zarr_metadata = [&](const std::string& param, DType dtype, const Shape& global, const Shape& write_shape) {
    const SaveArgs* save_args = FindArgs(request.save_args, param);
    std::optional<int64_t> chunk_target = save_args ? save_args->chunk_byte_size : std::nullopt;
    if (chunk_target) chunk_target = std::min(*chunk_target, target_file_size);
    else if (static_cast<int64_t>(NumBytes(dtype, write_shape)) > target_file_size) chunk_target = target_file_size;
    zarr::ZarrMetadata zmeta;
    zmeta.format = options_.use_zarr3 ? zarr::ZarrFormat::kV3 : zarr::ZarrFormat::kV2;
    zmeta.dtype = dtype;
    zmeta.shape = global;
    // A divisor of the shard shape, so that every process's boxes tile the chunk grid.
    zmeta.chunks = zarr::ChooseChunkShape(global, write_shape, dtype, chunk_target);
    if (options_.use_compression) {
      if (options_.compressor == "zstd") {
        zmeta.zstd_level = options_.use_zarr3 ? 3 : 1;
      } else {
        // TensorStore's defaults (clevel 5, blocksize chosen by blosc), with byte shuffle: what it writes for
        // {"id": "blosc", "cname": ..., "shuffle": 1}.
        zarr::BloscConfig blosc;
        blosc.cname = options_.compressor.substr(6);
        blosc.shuffle = 1;
        if (options_.use_zarr3) blosc.typesize = static_cast<int>(ItemSize(dtype));
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
  // Encode (cast, compress) and write in parallel; each worker holds one chunk at a time, so the bytes in
  // flight stay within (threads x chunk size) on top of the arrays themselves.
  // A CRC-32C of every chunk stored, and below of every metadata file written, into cairn_checksums/.
  md::Checksums checksums;
  std::mutex checksums_mu;
  const zarr::ChunkObserver record = [&](const std::string& key, std::string_view stored, const uint32_t*) {
    std::vector<uint32_t> blocks;
    const uint32_t crc = md::ChecksumValue(stored, &blocks);
    std::lock_guard lock(checksums_mu);
    checksums.chunks[key] = crc;
    if (!blocks.empty()) checksums.chunk_blocks[key] = std::move(blocks);
  };
  auto write_file = [&](const std::string& relative, const std::string& text) {
    file_system.WriteFile(directory / relative, text, /*sync=*/true);
    checksums.files[relative] = Crc32c(text);
  };
  // save_concurrent_gb bounds the bytes being cast and encoded at once (an array, or one box of it).
  ByteBudget budget(static_cast<uint64_t>(std::max<int64_t>(options_.save_concurrent_gb, 1)) << 30);
  // Parameters declared frozen (SaveArgs::frozen) take every chunk from the base, unread and unhashed; their CRCs
  // come from the base's checksums, so restores and `cairn verify` still check every byte this step references.
  std::set<std::string> frozen_done;
  auto take_frozen = [&](const ArrayWrite& w) {
    const SaveArgs* save_args = FindArgs(request.save_args, w.param);
    if (!delta_writer || !base.index || !save_args || !save_args->frozen) return false;
    {
      std::lock_guard lock(checksums_mu);
      if (!frozen_done.insert(w.param).second) return true;  // another box of the same array did it
    }
    auto base_store = kvstore::OpenOcdbtForRead(directory.fs_ptr(), delta->item_dir);
    std::optional<zarr::ZarrMetadata> base_meta;
    try {
      base_meta = zarr::ReadZarrMetadata(*base_store, w.param);
    } catch (const NotFoundError&) {
    }
    if (!base_meta || zarr::EncodeZarrMetadata(*base_meta) != zarr::EncodeZarrMetadata(w.metadata)) {
      throw InvalidArgumentError(
          "parameter " + w.param + " is declared frozen, but the delta base " + delta->item_dir.string() +
          (base_meta ? " stores it with another dtype, shape, chunking or compression" : " does not hold it"));
    }
    zarr::ForEachChunkKey(w.metadata, [&](const std::string& chunk) {
      const std::string key = w.param + "/" + chunk;
      auto crc = base.checksums.chunks.find(key);
      if (crc == base.checksums.chunks.end() || !delta_writer->WriteFromBase(key)) {
        throw InvalidArgumentError("parameter " + w.param + " is declared frozen, but chunk " + key +
                                   " of the delta base " + delta->item_dir.string() + " is missing or unchecked");
      }
      std::lock_guard lock(checksums_mu);
      checksums.chunks[key] = crc->second;
      if (auto blocks = base.checksums.chunk_blocks.find(key); blocks != base.checksums.chunk_blocks.end()) {
        checksums.chunk_blocks[key] = blocks->second;
      }
    });
    return true;
  };
  ParallelFor(writes.size(), [&](size_t i) {
    const ArrayWrite& w = writes[i];
    if (w.write_metadata) zarr::WriteZarrMetadata(*store, w.param, w.metadata, &record);
    if (w.origin.size() != w.metadata.shape.size()) return;  // metadata only
    if (take_frozen(w)) return;
    ByteBudget::Hold hold(budget, w.data.num_bytes());
    const Array data = w.data.dtype() == w.metadata.dtype ? w.data : w.data.Cast(w.metadata.dtype);
    zarr::WriteZarrChunks(*store, w.param, w.metadata, data, w.origin, &record);
  });
  store->Flush();

  const std::string process_file = "process_" + std::to_string(process);
  file_system.CreateDirs(directory / md::kArrayMetadatasDir);
  write_file(std::string(md::kArrayMetadatasDir) + "/" + process_file, md::EncodeArrayMetadatas(array_metadatas));
  if (primary) {
    if (!strings.empty()) write_file(kStringsFile, strings.dump());
    write_file(md::kShardingFile, md::EncodeShardingFile(shardings));
    write_file(md::kTreeMetadataFile, md::EncodeTreeMetadata(tree_metadata));
  }
  if (delta_writer) {
    const kvstore::ocdbt::DeltaRecord written = delta_writer->delta_record();
    md::DeltaRecordFile record_file{written.sha256, written.bytes_written, written.bytes_shared,
                                    delta->item_dir.string()};
    file_system.CreateDirs(directory / md::kDeltaDir);
    file_system.WriteFile(directory / md::kDeltaDir / process_file, md::EncodeDeltaRecord(record_file),
                          /*sync=*/true);
  }
  file_system.CreateDirs(directory / md::kChecksumsDir);
  file_system.WriteFile(directory / md::kChecksumsDir / process_file, md::EncodeChecksums(checksums), /*sync=*/true);
}

void PyTreeCheckpointHandler::finalize(const HandlerDirectory& directory) {
  if (options_.use_ocdbt) handlers::FinalizeArrayStore(directory.fs_ptr(), directory, options_);
}

Tree PyTreeCheckpointHandler::Restore(const HandlerDirectory& directory, const RestoreRequest& request) {
  ItemReader reader(directory.fs_ptr(), directory, options_.verify_checksums);
  const md::TreeMetadata& saved = *reader.tree;
  auto restore_args = [&](const std::string& param) { return FindArgs(request.restore_args, param); };

  if (request.item.is_none()) {
    std::vector<Tree> values(saved.entries.size());
    ParallelFor(saved.entries.size(), [&](size_t i) {
      const auto& entry = saved.entries[i];
      values[i] = reader.Read(entry, Tree::None(), restore_args(ParamName(entry.path)), request.strict);
    });
    return md::TreeFromMetadata(saved, [&](const md::TreeMetadataEntry& entry) {
      return std::move(values[static_cast<size_t>(&entry - saved.entries.data())]);
    });
  }

  std::map<std::string, const md::TreeMetadataEntry*> by_param;
  for (const auto& entry : saved.entries) by_param[ParamName(entry.path)] = &entry;
  if (!request.partial_restore) {
    Tree saved_structure = md::TreeFromMetadata(saved, [](const md::TreeMetadataEntry&) { return Tree::Placeholder(); });
    std::string diff = Tree::StructureDiff(saved_structure, request.item);
    if (!diff.empty()) {
      throw InvalidArgumentError("the restore target does not match the tree saved in " + directory.string() +
                                 " (expected = saved, found = target):\n" + diff +
                                 "Pass partial_restore to restore only the target's leaves.");
    }
  }
  // Match every target leaf to its saved entry first (so a missing one fails before anything is read), read
  // them in parallel, then put the values in place: Map visits leaves in the same order both times.
  struct Job {
    const md::TreeMetadataEntry* entry;
    Tree target;
    std::string param;
  };
  std::vector<Job> jobs;
  request.item.Map([&](const KeyPath& path, const Tree& leaf) -> Tree {
    if (leaf.is_placeholder()) return leaf;
    const std::string param = ParamName(path);
    auto it = by_param.find(param);
    if (it == by_param.end()) {
      throw NotFoundError("parameter " + KeyPathToString(path) + " of the restore target is not in the checkpoint " +
                          directory.string());
    }
    jobs.push_back({it->second, leaf, param});
    return leaf;
  });
  std::vector<Tree> values(jobs.size());
  ByteBudget budget(static_cast<uint64_t>(std::max<int64_t>(options_.restore_concurrent_gb, 1)) << 30);
  ParallelFor(jobs.size(), [&](size_t i) {
    // restore_concurrent_gb bounds the bytes of the leaves being read at once (the target's size for arrays).
    const Tree& target = jobs[i].target;
    const uint64_t bytes = target.is_spec() || target.is_array() ? NumBytes(target.array_spec().dtype, target.array_spec().shape) : 0;
    ByteBudget::Hold hold(budget, bytes);
    values[i] = reader.Read(*jobs[i].entry, target, restore_args(jobs[i].param), request.strict);
  });
  size_t next = 0;
  return request.item.Map([&](const KeyPath&, const Tree& leaf) -> Tree {
    return leaf.is_placeholder() ? leaf : std::move(values[next++]);
  });
}

Tree PyTreeCheckpointHandler::metadata(const HandlerDirectory& directory) {
  ItemReader reader(directory.fs_ptr(), directory, options_.verify_checksums);
  return md::TreeFromMetadata(*reader.tree, [&](const md::TreeMetadataEntry& entry) -> Tree {
    const std::string param = ParamName(entry.path);
    if (entry.value_type == md::kString) return reader.Read(entry, Tree::None(), nullptr, true);
    if (entry.value_type == md::kPlaceholderType) return Tree::Placeholder();
    if (entry.skip_deserialize) {
      const Tree& held = reader.AggregateValue(entry.path);
      return held.is_array() ? Tree(held.array().spec()) : held;
    }
    zarr::ZarrMetadata zmeta = zarr::ReadZarrMetadata(*reader.store, param, reader.verifier());
    return Tree(ArraySpec{zmeta.dtype, zmeta.shape});
  });
}

}  // namespace cairn
