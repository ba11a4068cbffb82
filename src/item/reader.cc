#include "item/reader.h"

#include <algorithm>
#include <cctype>

#include "cairn/error.h"
#include "core/box_copy.h"
#include "core/crc32c.h"
#include "core/byte_budget.h"
#include "core/thread_pool.h"
#include "item/array_storage.h"
#include "item/lazy_array.h"
#include "item/restore_into.h"
#include "item/synthesized_metadata.h"
#include "kvstore/checksummed_kvstore.h"
#include "metadata/legacy_aggregate.h"
#include "metadata/process_files.h"
#include "metadata/python_json.h"
#include "zarr/zarr_array.h"

namespace cairn::item {
namespace {

namespace md = metadata;

static_assert(md::kChecksumBlockBytes == kCrc32cBlockBytes, "the checksum files' blocks are the decorator's");

const RestoreArgs* FindArgs(const RestoreArgsMap& map, const std::string& param) {
  if (auto it = map.find(param); it != map.end()) return &it->second;
  if (auto it = map.find(""); it != map.end()) return &it->second;
  return nullptr;
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

}  // namespace

// What is loaded on first use.
struct ItemReader::Lazy {
  OnceLoader store_once;
  std::unique_ptr<kvstore::KvStore> store;
  OnceLoader tree_once;
  std::optional<md::TreeMetadata> synthesized;
  OnceLoader strings_once;
  nlohmann::json strings;
  OnceLoader aggregate_once;
  Tree aggregate;
  OnceLoader shardings_once;
  std::map<std::string, nlohmann::json> shardings;
  OnceLoader facts_once;
  std::map<std::string, std::pair<md::ArrayMetadataEntry, std::string>> array_facts;
};

ItemReader::ItemReader(std::shared_ptr<FileSystem> fs, std::filesystem::path dir, bool verify_checksums,
                       ItemCheckSink* sink)
    : fs_(std::move(fs)),
      dir_(std::move(dir)),
      verify_checksums_(verify_checksums),
      lazy_(std::make_unique<Lazy>()),
      sink_(sink) {
  if (!fs_->IsDirectory(dir_)) throw NotFoundError("checkpoint item " + dir_.string() + " does not exist");
  layout_ = DetectItemLayout(*fs_, dir_);
  if (verify_checksums_) LoadChecksums();
  if (layout_.tree_metadata) {
    Guard(kTreeMetadataFile, [&] {
      saved_tree_ = md::DecodeTreeMetadata(ReadFile(kTreeMetadataFile), (dir_ / kTreeMetadataFile).string());
    });
  }
  // (A `_METADATA` that cairn saved and that has gone missing is caught by LoadChecksums: without it the tree
  // would be rebuilt from the arrays, as for Orbax checkpoints that have none.)
}

ItemReader::~ItemReader() = default;

// Every `cairn_checksums/process_*` file (checkpoints cairn wrote have one per process; Orbax's have none).
void ItemReader::LoadChecksums() {
  if (!layout_.checksums) return;  // nothing to check: no checker, no CRCs computed
  md::Checksums all;
  for (const std::string& relative : md::ProcessFiles(*fs_, dir_, kChecksumsDir)) {
    Guard(relative, [&] {
      md::Checksums part = md::DecodeChecksums(ReadFile(relative), (dir_ / relative).string());
      md::MergeChecksums(all, part);
      ++checksum_files_;
    });
  }
  checksums_ = std::move(all);
  // A metadata file recorded at save time must still be there (a missing `_sharding` or `array_metadatas/` file
  // would otherwise pass unnoticed: both are optional in Orbax's format).
  for (const auto& [relative, crc] : checksums_.files) {
    if (fs_->Exists(dir_ / relative)) continue;
    if (sink_) {
      sink_->Problem(relative, "is missing (cairn_checksums records it)");
      continue;
    }
    throw CorruptionError((dir_ / relative).string() + " is missing, though it was saved (it is recorded in " +
                          (dir_ / kChecksumsDir).string() + ")");
  }
}

uint64_t ItemReader::MaxFileBytes(const std::string& relative) {
  if (relative == kLegacyAggregateFile) return md::kMaxAggregateFileBytes;
  for (const char* dir : {kChecksumsDir, kDeltaDir}) {
    if (relative.rfind(std::string(dir) + "/", 0) == 0) return md::kMaxChecksumFileBytes;
  }
  return kMaxMetadataFileBytes;
}

std::string ItemReader::ReadFile(const std::string& relative) const {
  std::string text = fs_->ReadFileBelow(dir_, relative, MaxFileBytes(relative));
  if (!sink_) {
    md::CheckItemFile(dir_, relative, text, checksums_);
    return text;
  }
  sink_->BytesRead(text.size());
  const auto recorded = checksums_.files.find(relative);
  {
    std::lock_guard lock(counts_mu_);
    ++counts_.files_checked;
    if (recorded != checksums_.files.end()) ++counts_.files_checksummed;
  }
  // (A checking reader's problem is reported at the file's place, `relative`: the message need not name it again.)
  if (recorded != checksums_.files.end() && Crc32c(text) != recorded->second) {
    throw CorruptionError("fails its CRC-32C check: the file is not the one that was saved");
  }
  return text;
}

kvstore::KvStore& ItemReader::store() {
  lazy_->store_once.Run([&] {
    std::unique_ptr<kvstore::KvStore> store =
        OpenArrayStoreForRead(fs_, dir_, saved_tree_ ? saved_tree_->use_ocdbt : std::nullopt);
    if (!checksums_.chunks.empty()) {
      kvstore::ValueChecksums expected{checksums_.chunks, checksums_.chunk_blocks};
      store = std::make_unique<kvstore::ChecksummedKvStore>(std::move(store), std::move(expected));
    }
    lazy_->store = std::move(store);
  });
  return *lazy_->store;
}

const md::TreeMetadata& ItemReader::tree() {
  if (saved_tree_) return *saved_tree_;
  lazy_->tree_once.Run([&] { lazy_->synthesized = SynthesizeTreeMetadata(store(), Strings(), Aggregate()); });
  return *lazy_->synthesized;
}

const nlohmann::json& ItemReader::Strings() {
  lazy_->strings_once.Run([&] {
    if (fs_->Exists(dir_ / kStringsFile)) {
      lazy_->strings = md::ParseJson(ReadFile(kStringsFile), (dir_ / kStringsFile).string());
    }
  });
  return lazy_->strings;
}

const Tree& ItemReader::Aggregate() {
  lazy_->aggregate_once.Run([&] {
    if (layout_.legacy_aggregate) {
      lazy_->aggregate =
          md::DecodeMsgpackAggregate(ReadFile(kLegacyAggregateFile), (dir_ / kLegacyAggregateFile).string());
    }
  });
  return lazy_->aggregate;
}

const std::map<std::string, nlohmann::json>& ItemReader::Shardings() {
  lazy_->shardings_once.Run([&] {
    if (fs_->Exists(dir_ / kShardingFile)) {
      lazy_->shardings = md::DecodeSharding(ReadFile(kShardingFile), (dir_ / kShardingFile).string());
    }
  });
  return lazy_->shardings;
}

// The aggregate file's value at `path` (sequence levels may be lists or dicts keyed '0', '1', ...).
const Tree& ItemReader::AggregateValue(const KeyPath& path) {
  const Tree* node = &Aggregate();
  if (node->is_none()) {
    throw NotFoundError("parameter " + ParamName(path) + " of " + dir_.string() + " is stored in the legacy " +
                        kLegacyAggregateFile + " file, which is missing");
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
                            (dir_ / kLegacyAggregateFile).string());
    }
  }
  return *node;
}

// `_sharding` and `array_metadatas/process_*`, when present: read and checked for form (each file on its own, so that
// a checking reader reports every damaged one).
void ItemReader::LoadArrayFacts() {
  lazy_->facts_once.Run([&] {
    Guard(kShardingFile, [&] { Shardings(); });
    for (const std::string& relative : md::ProcessFiles(*fs_, dir_, kArrayMetadatasDir)) {
      Guard(relative, [&] {
        const std::string what = (dir_ / relative).string();
        for (auto& [p, entry] : md::DecodeArrayMetadatas(ReadFile(relative), what)) {
          lazy_->array_facts[p] = {std::move(entry), what};
        }
      });
    }
  });
}

// The zarr metadata of an array, held against the facts above for every array restored.
zarr::ZarrMetadata ItemReader::ArrayMetadata(const std::string& param) {
  zarr::ZarrMetadata zmeta = zarr::ReadZarrMetadata(store(), param);
  LoadArrayFacts();
  auto it = lazy_->array_facts.find(param);
  if (it == lazy_->array_facts.end()) return zmeta;
  const auto& [entry, file] = it->second;
  if (entry.chunk_shape.size() != zmeta.shape.size() || entry.write_shape.size() != zmeta.shape.size()) {
    throw CorruptionError(file + ": parameter " + param + " has write shape " + ShapeToString(entry.write_shape) +
                          " and chunk shape " + ShapeToString(entry.chunk_shape) + ", which do not fit its rank-" +
                          std::to_string(zmeta.shape.size()) + " zarr array");
  }
  return zmeta;
}

// The boxes a ShardedArraySpec asks for, each read from only the chunks it overlaps.
Tree ItemReader::ReadBoxes(const std::string& param, const Tree* held, const std::optional<zarr::ZarrMetadata>& zmeta,
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
                      : zarr::ReadZarrRegion(store(), param, *zmeta, box.origin, box.shape, dtype);
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

Tree ItemReader::Read(const md::TreeMetadataEntry& entry, const Tree& target, const RestoreArgs* restore_args,
                    bool strict) {
  const std::string param = ParamName(entry.path);
  const std::string& type = entry.value_type;
  if (target.is_placeholder() || type == md::kPlaceholderType) return Tree::Placeholder();
  if (md::IsEmptyNodeType(type)) return md::EmptyNodeValue(type);
  if (type == md::kString) {
    const auto& all = Strings();
    if (!all.is_object() || !all.contains(param) || !all[param].is_string()) {
      throw CorruptionError("string parameter " + param + " is missing from " + (dir_ / kStringsFile).string());
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
    zmeta = ArrayMetadata(param);
  }
  if (WantsFill(restore_args, target)) {  // RestoreArgs::fill_target: into the caller's arrays (restore_into.h)
    CheckFillTarget(param, target, held ? held->array().shape() : zmeta->shape, *restore_args);
    return held ? FillTargetFromHeld(held->array(), target) : FillTarget(store(), param, *zmeta, target);
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
  // RestoreArgs::lazy: over a mapping of the file, where it can be (lazy_array.h).
  std::optional<Array> mapped;
  if (!held && !target.is_scalar()) mapped = MapLazily(store(), param, *zmeta, shape, dtype, restore_args);
  Array array = mapped ? std::move(*mapped)
                : held ? FitArray(held->array(), shape, dtype)
                       : zarr::ReadZarrRegion(store(), param, *zmeta, Shape(shape.size(), 0), shape, dtype);
  if (target.is_scalar()) return ArrayToScalar(array, &target.scalar_value());
  if (target.is_none() && type == md::kScalar && array.rank() == 0) return ArrayToScalar(array, nullptr);
  return Tree(std::move(array));
}

Tree ItemReader::Restore(const RestoreRequest& request) {
  const md::TreeMetadata& saved = tree();
  if (!saved_tree_ && saved.entries.empty()) {
    throw NotFoundError("checkpoint item " + dir_.string() + " has no " + kTreeMetadataFile +
                        " and no arrays: nothing to restore");
  }
  auto restore_args = [&](const std::string& param) { return FindArgs(request.restore_args, param); };

  if (request.item.is_none()) {
    std::vector<Tree> values(saved.entries.size());
    ParallelFor(saved.entries.size(), [&](size_t i) {
      const auto& entry = saved.entries[i];
      values[i] = Read(entry, Tree::None(), restore_args(ParamName(entry.path)), request.strict);
    });
    return md::TreeFromMetadata(saved, [&](const md::TreeMetadataEntry& entry) {
      return std::move(values[static_cast<size_t>(&entry - saved.entries.data())]);
    });
  }

  std::map<std::string, const md::TreeMetadataEntry*> by_param;
  for (const auto& entry : saved.entries) by_param[ParamName(entry.path)] = &entry;
  if (!request.partial_restore) {
    Tree saved_structure =
        md::TreeFromMetadata(saved, [](const md::TreeMetadataEntry&) { return Tree::Placeholder(); });
    std::string diff = Tree::StructureDiff(saved_structure, request.item);
    if (!diff.empty()) {
      throw InvalidArgumentError("the restore target does not match the tree saved in " + dir_.string() +
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
                          dir_.string());
    }
    jobs.push_back({it->second, leaf, param});
    return leaf;
  });
  // RestoreArgs::fill_target: every target array is checked before any leaf is read (restore_into.h).
  for (const Job& job : jobs) {
    const RestoreArgs* args = restore_args(job.param);
    const std::string& type = job.entry->value_type;
    if (!WantsFill(args, job.target) || (type != md::kJaxArray && type != md::kNumpyArray && type != md::kScalar)) {
      continue;
    }
    const Tree* held = job.entry->skip_deserialize ? &AggregateValue(job.entry->path) : nullptr;
    if (held && !held->is_array()) continue;  // (a scalar in the aggregate file: Read says what is wrong)
    CheckFillTarget(job.param, job.target, held ? held->array().shape() : ArrayMetadata(job.param).shape, *args);
  }
  std::vector<Tree> values(jobs.size());
  ByteBudget budget(static_cast<uint64_t>(std::max<int64_t>(request.restore_concurrent_gb, 1)) << 30);
  ParallelFor(jobs.size(), [&](size_t i) {
    // restore_concurrent_gb bounds the bytes of the leaves being read at once (the target's size for arrays).
    const Tree& target = jobs[i].target;
    const uint64_t bytes =
        target.is_spec() || target.is_array() ? NumBytes(target.array_spec().dtype, target.array_spec().shape) : 0;
    ByteBudget::Hold hold(budget, bytes);
    values[i] = Read(*jobs[i].entry, target, restore_args(jobs[i].param), request.strict);
  });
  size_t next = 0;
  return request.item.Map([&](const KeyPath&, const Tree& leaf) -> Tree {
    return leaf.is_placeholder() ? leaf : std::move(values[next++]);
  });
}

Tree ItemReader::Metadata() {
  const md::TreeMetadata& saved = tree();
  if (!saved_tree_ && saved.entries.empty()) {
    throw NotFoundError("checkpoint item " + dir_.string() + " has no " + kTreeMetadataFile +
                        " and no arrays: nothing to restore");
  }
  return md::TreeFromMetadata(saved, [&](const md::TreeMetadataEntry& entry) -> Tree {
    if (entry.value_type == md::kString) return Read(entry, Tree::None(), nullptr, true);
    if (entry.value_type == md::kPlaceholderType) return Tree::Placeholder();
    if (entry.skip_deserialize) {
      const Tree& held = AggregateValue(entry.path);
      return held.is_array() ? Tree(held.array().spec()) : held;
    }
    zarr::ZarrMetadata zmeta = zarr::ReadZarrMetadata(store(), ParamName(entry.path));
    return Tree(ArraySpec{zmeta.dtype, zmeta.shape});
  });
}

std::optional<std::string> ReadJsonItemFile(FileSystem& fs, const std::filesystem::path& file) {
  return md::ReadFileWithChecksum(fs, file, md::ChecksumFileFor(file));
}

}  // namespace cairn::item
