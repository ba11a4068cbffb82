// ItemReader::Check: the reader in its checking mode reads the whole item, as `cairn verify` wants it read. The
// files go through the same loaders a restore uses (ReadFile, Strings, Shardings, Aggregate, the array facts) and
// the values through the same store (a ChecksummedKvStore over the item's OCDBT database or directories); only the
// walk is this file's: every chunk the zarr metadata implies, not the ones a target asks for.
#include <algorithm>
#include <map>
#include <set>

#include "core/thread_pool.h"
#include "item/reader.h"
#include "kvstore/ocdbt/ocdbt.h"
#include "metadata/delta_record.h"
#include "metadata/process_files.h"
#include "metadata/python_json.h"
#include "zarr/zarr_array.h"

namespace cairn::item {
namespace {

namespace md = metadata;

// More missing chunks than this in one array are summarised, not listed one by one.
constexpr size_t kMaxListedMissing = 8;

bool IsArrayType(const std::string& type) {
  return type == md::kJaxArray || type == md::kNumpyArray || type == md::kScalar;
}

bool EndsWith(const std::string& text, std::string_view suffix) {
  return text.size() > suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

ItemCheckCounts ItemReader::Check() {
  if (!sink_) throw InvalidArgumentError("ItemReader::Check needs an ItemCheckSink to report to");
  // (`cairn_checksums/` and `_METADATA` were read when the reader opened, their problems reported then.)
  // The delta records, each checked against its own CRC. The chunks they describe are checked below like any other:
  // a delta step's shared chunks are read through its own tree, from its own (linked) files.
  for (const std::string& relative : md::ProcessFiles(*fs_, dir_, kDeltaDir)) {
    Guard(relative, [&] { md::DecodeDeltaRecord(ReadFile(relative), (dir_ / relative).string()); });
  }
  if (checksum_files_ == 0) {
    sink_->Note("no checksums (no cairn_checksums/, as in checkpoints Orbax writes): every chunk was decoded, "
                "but there was nothing to compare the bytes against");
  }

  // The metadata files, each read, checked and parsed by the loader a restore uses.
  LoadArrayFacts();  // `_sharding`, `array_metadatas/*`
  Guard(kStringsFile, [&] { Strings(); });
  const bool aggregate_ok = Guard(kLegacyAggregateFile, [&] { Aggregate(); }) && layout_.legacy_aggregate;
  // Any other file the checksums record: read, checked, parsed as JSON.
  for (const auto& recorded : checksums_.files) {
    const std::string& relative = recorded.first;  // (not a structured binding: clang 14 cannot capture one)
    if (relative == kTreeMetadataFile || relative == kShardingFile || relative == kStringsFile ||
        relative == kLegacyAggregateFile || relative.rfind(std::string(kArrayMetadatasDir) + "/", 0) == 0 ||
        !fs_->Exists(dir_ / relative)) {
      continue;  // (a missing one was reported when the reader opened)
    }
    Guard(relative, [&] { md::ParseJson(ReadFile(relative), (dir_ / relative).string()); });
  }

  // The store; every key, which for OCDBT visits (and CRC-checks) every B+tree node; then each process's own
  // database.
  kvstore::KvStore* values = nullptr;
  if (!Guard("", [&] { values = &store(); })) return counts_;
  std::vector<std::string> keys;
  Guard("", [&] { keys = values->ListKeys(); });
  for (const auto& name : fs_->ListDir(dir_)) {
    if (!IsOcdbtProcessDir(name) || !fs_->IsDirectory(dir_ / name)) continue;
    Guard(name, [&] { kvstore::OpenOcdbtForRead(fs_, dir_ / name)->ListKeys(); });
  }

  // The arrays: from `_METADATA`, or when it is missing from the zarr metadata keys in the store.
  std::vector<std::string> params;
  if (saved_tree_) {
    bool needs_aggregate = false;
    for (const auto& entry : saved_tree_->entries) {
      if (!IsArrayType(entry.value_type)) continue;
      if (entry.skip_deserialize) {
        needs_aggregate = true;
      } else {
        params.push_back(ParamName(entry.path));
      }
    }
    if (needs_aggregate && !aggregate_ok && !fs_->Exists(dir_ / kLegacyAggregateFile)) {
      sink_->Problem(kLegacyAggregateFile, "is missing, but _METADATA keeps values in it");
    }
  } else if (!layout_.tree_metadata) {
    sink_->Note("no _METADATA; the arrays were found from the zarr metadata in the store");
    for (const auto& key : keys) {
      for (std::string_view suffix : {"/.zarray", "/zarr.json"}) {
        if (EndsWith(key, suffix)) params.push_back(key.substr(0, key.size() - suffix.size()));
      }
    }
  }
  std::map<std::string, size_t> stored_per_param;
  for (const auto& key : keys) {
    if (key.find('/') != std::string::npos) ++stored_per_param[key.substr(0, key.find('/'))];
  }

  // The values read (each checked by the store as it is read), and the chunks among them that had a CRC-32C.
  std::mutex mu;
  std::set<std::string> visited;
  auto visit = [&](const std::string& key) {
    std::lock_guard lock(mu);
    visited.insert(key);
  };
  auto count = [&](uint64_t ItemCheckCounts::*field) {
    std::lock_guard lock(counts_mu_);
    ++(counts_.*field);
  };
  auto checked = [&](const std::string& key, bool chunk) {
    if (chunk && checksums_.chunks.count(key)) count(&ItemCheckCounts::chunks_checksummed);
  };
  ParallelFor(params.size(), [&](size_t i) {
    const std::string& param = params[i];
    zarr::ZarrMetadata zmeta;
    uint64_t expected = 0;
    const bool readable = Guard(param, [&] {
      for (const char* name : {"/.zarray", "/zarr.json"}) {
        if (std::binary_search(keys.begin(), keys.end(), param + name)) visit(param + name);
      }
      zmeta = zarr::ReadZarrMetadata(*values, param);
      expected = zarr::NumChunks(zmeta, "zarr metadata of " + param);
    });
    if (!readable) return;
    const uint64_t stored = stored_per_param.count(param) ? stored_per_param.at(param) : 0;
    if (expected > stored + (uint64_t{1} << 20)) {
      sink_->Problem(param, "its zarr metadata implies " + std::to_string(expected) +
                                " chunks but the store holds " + std::to_string(stored) + " keys for it");
      return;
    }
    std::vector<std::string> missing;
    bool broken = false;
    zarr::ForEachChunkKey(zmeta, [&](const std::string& chunk) {
      const std::string key = param + "/" + chunk;
      std::optional<std::string> value;
      visit(key);
      try {
        value = values->Read(key, zarr::MaxStoredChunkBytes(zmeta));
        if (!value) {
          missing.push_back(key);
          return;
        }
        sink_->BytesRead(value->size());
        checked(key, true);
        zarr::DecodeZarrChunk(zmeta, *value, "chunk " + key);
        count(&ItemCheckCounts::chunks);
      } catch (const CorruptionError& e) {
        if (!value) checked(key, true);  // refused as it was read (its CRC-32C)
        broken = true;
        sink_->Problem(key, e.what());
      } catch (const Error& e) {
        broken = true;
        sink_->Problem(key, e.what());
      }
    });
    for (size_t m = 0; m < missing.size() && m < kMaxListedMissing; ++m) {
      sink_->Problem(missing[m], "is missing: the array's zarr metadata implies it");
    }
    if (missing.size() > kMaxListedMissing) {
      sink_->Problem(param, "and " + std::to_string(missing.size() - kMaxListedMissing) +
                                " more of its chunks are missing (" + std::to_string(missing.size()) + " of " +
                                std::to_string(expected) + ")");
    }
    if (missing.empty() && !broken) count(&ItemCheckCounts::arrays);
  });

  // Values the checksums record that no array above accounts for (a parameter missing from `_METADATA`).
  for (const auto& recorded : checksums_.chunks) {
    const std::string& key = recorded.first;  // (not a structured binding: clang 14 cannot capture one)
    if (visited.count(key)) continue;
    Guard(key, [&] {
      // No zarr metadata says what the value can hold: its recorded block checksums do (a value of one block or
      // less records none); metadata keys, and values of checksum files without blocks, get the metadata cap.
      const auto blocks = checksums_.chunk_blocks.find(key);
      auto value = values->Read(key, blocks != checksums_.chunk_blocks.end()
                                         ? blocks->second.size() * md::kChecksumBlockBytes
                                         : kMaxMetadataFileBytes);
      if (!value) {
        sink_->Problem(key, "is missing (cairn_checksums records it)");
        return;
      }
      sink_->BytesRead(value->size());
      checked(key, key.find("/.zarray") == std::string::npos && key.find("/zarr.json") == std::string::npos);
    });
  }
  std::lock_guard lock(counts_mu_);
  return counts_;
}

}  // namespace cairn::item
