// VerifyCheckpoint: every file, every OCDBT node, every chunk, each checked against what was recorded for it.
#include "cairn/verify.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "cairn/error.h"
#include "checkpoint/layout.h"
#include "io/disk_usage.h"
#include "io/temporary_path.h"
#include "core/crc32c.h"
#include "core/thread_pool.h"
#include "item/array_storage.h"
#include "item/layout.h"
#include "kvstore/checksummed_kvstore.h"
#include "kvstore/ocdbt/ocdbt.h"
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
namespace fs_ns = std::filesystem;

// More missing chunks than this in one array are summarised, not listed one by one.
constexpr size_t kMaxListedMissing = 8;

bool IsArrayType(const std::string& type) {
  return type == md::kJaxArray || type == md::kNumpyArray || type == md::kScalar;
}

class Verifier {
 public:
  Verifier(const std::shared_ptr<FileSystem>& fs, fs_ns::path root, const VerifyOptions& options, VerifyReport& report)
      : fs_(fs), root_(std::move(root)), options_(options), report_(report) {
    if (options_.progress) total_ = io::BytesUnder(*fs_, root_);
  }

  void Root() {
    const auto layout = checkpoint::ListSteps(*fs_, root_);
    for (const auto& name : layout.unfinished) {
      Note(name + ": an unfinished save (not a step; a CheckpointManager ignores it and cleans it up)");
    }
    if (layout.steps.empty()) Problem(".", "holds no finished step");
    for (const auto& name : layout.steps) Step(root_ / name);
  }

  void Step(const fs_ns::path& step) {
    ++report_.steps;
    const std::string label = Label(step);
    if (auto text = ReadFile(step, md::kCheckpointMetadataFile, nullptr)) {
      try {
        CheckSiblingChecksum(step / md::kCheckpointMetadataFile, step / md::kCheckpointMetadataChecksumFile);
        md::DecodeCheckpointMetadata(*text, (step / md::kCheckpointMetadataFile).string());
      } catch (const Error& e) {
        Problem(label + md::kCheckpointMetadataFile, e.what());
      }
    } else if (fs_->Exists(step / md::kCheckpointMetadataChecksumFile)) {
      Problem(label + md::kCheckpointMetadataFile, "is missing, but its checksum file is there: it was written "
                                                   "and has since been lost");
    } else if (!fs_->Exists(step / md::kCheckpointMetadataFile)) {
      Note((label.empty() ? std::string(".") : label) + ": no " + md::kCheckpointMetadataFile +
           " (Orbax restores such checkpoints too)");
    }
    const auto items = checkpoint::ListItems(*fs_, step);
    if (items.empty()) Problem(label.empty() ? "." : label, "holds no checkpoint item");
    for (const auto& item : items) {
      if (!item.name.empty() && item.handler.empty()) {
        // Its bytes may be intact, but a restore without args refuses the step (as Orbax's does): that is not
        // "all is well".
        Problem(label + item.name, std::string("no handler is recorded for this item (") + md::kCheckpointMetadataFile +
                                       " or its item_handlers is missing): a restore without args refuses the "
                                       "step; only a restore with args naming the item's handler reads it");
      }
      ++report_.items;
      if (item.is_pytree) {
        PyTreeItem(item.dir);
      } else {
        OtherItem(item.dir, item.handler);
      }
    }
  }

  void PyTreeItem(const fs_ns::path& dir) {
    const std::string label = Label(dir);
    const std::string shown = label.empty() ? "." : label.substr(0, label.size() - 1);
    // The recorded CRCs, from every process's file.
    md::Checksums sums;
    bool have_sums = false;
    const auto sums_dir = dir / md::kChecksumsDir;
    if (fs_->IsDirectory(sums_dir)) {
      for (const auto& name : fs_->ListDir(sums_dir)) {
        const std::string relative = std::string(md::kChecksumsDir) + "/" + name;
        auto text = ReadFile(dir, relative, nullptr);
        if (!text) continue;
        try {
          md::Checksums part = md::DecodeChecksums(*text, (dir / relative).string());
          sums.chunks.merge(part.chunks);
          sums.files.merge(part.files);
          sums.chunk_blocks.merge(part.chunk_blocks);
          have_sums = true;
        } catch (const Error& e) {
          Problem(label + relative, e.what());
        }
      }
    }
    // The delta record (`cairn_delta/`): read and checked against its own CRC. The chunks it describes are checked
    // below like any other: a delta step's shared chunks are read through its own tree, from its own (linked) files.
    if (fs_->IsDirectory(dir / md::kDeltaDir)) {
      for (const auto& name : fs_->ListDir(dir / md::kDeltaDir)) {
        const std::string relative = std::string(md::kDeltaDir) + "/" + name;
        auto text = ReadFile(dir, relative, nullptr);
        if (!text) continue;
        try {
          md::DecodeDeltaRecord(*text, (dir / relative).string());
        } catch (const Error& e) {
          Problem(label + relative, e.what());
        }
      }
    }
    if (!have_sums) {
      Note(shown + ": no checksums (no cairn_checksums/, as in checkpoints Orbax writes): every chunk was decoded, "
                   "but there was nothing to compare the bytes against");
    }

    // Metadata files: the ones the checksums name, and the ones an item may hold; each read, checked and parsed.
    std::set<std::string> files = {item::kTreeMetadataFile, item::kShardingFile, item::kStringsFile,
                                   item::kLegacyAggregateFile};
    if (fs_->IsDirectory(dir / md::kArrayMetadatasDir)) {
      for (const auto& name : fs_->ListDir(dir / md::kArrayMetadatasDir)) {
        files.insert(std::string(md::kArrayMetadatasDir) + "/" + name);
      }
    }
    for (const auto& [relative, crc] : sums.files) files.insert(relative);
    std::optional<md::TreeMetadata> tree;
    bool aggregate_ok = false;
    for (const auto& relative : files) {
      const auto path = dir / relative;
      if (!fs_->Exists(path)) {
        if (sums.files.count(relative)) Problem(label + relative, "is missing (cairn_checksums records it)");
        continue;
      }
      auto text = ReadFile(dir, relative, &sums);
      if (!text) continue;
      try {
        if (relative == md::kTreeMetadataFile) {
          tree = md::DecodeTreeMetadata(*text, path.string());
        } else if (relative == md::kShardingFile) {
          md::DecodeSharding(*text, path.string());
        } else if (relative.rfind(std::string(md::kArrayMetadatasDir) + "/", 0) == 0) {
          md::DecodeArrayMetadatas(*text, path.string());
        } else if (relative == md::kLegacyAggregateFile) {
          md::DecodeMsgpackAggregate(*text, path.string());
          aggregate_ok = true;
        } else {
          md::ParseJson(*text, path.string());
        }
      } catch (const Error& e) {
        Problem(label + relative, e.what());
      }
    }

    std::unique_ptr<kvstore::KvStore> store;
    try {
      // Read through the recorded CRC-32Cs: every value read below is checked as a restore checks it.
      store = std::make_unique<kvstore::ChecksummedKvStore>(
          item::OpenArrayStoreForRead(fs_, dir, tree ? tree->use_ocdbt : std::nullopt),
          kvstore::ValueChecksums{sums.chunks, sums.chunk_blocks});
    } catch (const Error& e) {
      Problem(shown, e.what());
      return;
    }
    // Every key, which for OCDBT visits (and CRC-checks) every B+tree node; then each process's own database.
    std::vector<std::string> keys;
    try {
      keys = store->ListKeys();
    } catch (const Error& e) {
      Problem(shown, e.what());
    }
    for (const auto& name : fs_->ListDir(dir)) {
      if (!item::IsOcdbtProcessDir(name) || !fs_->IsDirectory(dir / name)) continue;
      try {
        kvstore::OpenOcdbtForRead(fs_, dir / name)->ListKeys();
      } catch (const Error& e) {
        Problem(label + name, e.what());
      }
    }

    // The arrays: from `_METADATA`, or when it is missing from the zarr metadata keys in the store.
    std::vector<std::string> params;
    if (tree) {
      bool needs_aggregate = false;
      for (const auto& entry : tree->entries) {
        if (!IsArrayType(entry.value_type)) continue;
        if (entry.skip_deserialize) {
          needs_aggregate = true;
        } else {
          params.push_back(ParamName(entry.path));
        }
      }
      if (needs_aggregate && !aggregate_ok && !fs_->Exists(dir / md::kLegacyAggregateFile)) {
        Problem(label + md::kLegacyAggregateFile, "is missing, but _METADATA keeps values in it");
      }
    } else if (!fs_->Exists(dir / md::kTreeMetadataFile)) {
      Note(shown + ": no _METADATA; the arrays were found from the zarr metadata in the store");
      for (const auto& key : keys) {
        for (std::string_view suffix : {"/.zarray", "/zarr.json"}) {
          if (key.size() > suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0) {
            params.push_back(key.substr(0, key.size() - suffix.size()));
          }
        }
      }
    }
    std::map<std::string, size_t> stored_per_param;
    for (const auto& key : keys) {
      const auto slash = key.rfind('/');
      if (slash != std::string::npos) ++stored_per_param[key.substr(0, key.find('/'))];
    }

    // The values read (each checked by the store as it is read), and the chunks among them that had a CRC-32C.
    std::set<std::string> visited;
    auto visit = [&](const std::string& key) {
      std::lock_guard lock(mu_);
      visited.insert(key);
    };
    auto checked = [&](const std::string& key, bool chunk) {
      std::lock_guard lock(mu_);
      if (chunk && sums.chunks.count(key)) ++report_.chunks_checksummed;
    };
    ParallelFor(params.size(), [&](size_t i) {
      const std::string& param = params[i];
      zarr::ZarrMetadata zmeta;
      try {
        for (const char* name : {"/.zarray", "/zarr.json"}) {
          if (std::binary_search(keys.begin(), keys.end(), param + name)) visit(param + name);
        }
        zmeta = zarr::ReadZarrMetadata(*store, param);
      } catch (const Error& e) {
        Problem(label + param, e.what());
        return;
      }
      uint64_t expected = 0;
      try {
        expected = zarr::NumChunks(zmeta, "zarr metadata of " + param);
      } catch (const Error& e) {
        Problem(label + param, e.what());
        return;
      }
      const uint64_t stored = stored_per_param.count(param) ? stored_per_param[param] : 0;
      if (expected > stored + (uint64_t{1} << 20)) {
        Problem(label + param, "its zarr metadata implies " + std::to_string(expected) + " chunks but the store holds " +
                                   std::to_string(stored) + " keys for it");
        return;
      }
      std::vector<std::string> missing;
      bool broken = false;
      zarr::ForEachChunkKey(zmeta, [&](const std::string& chunk) {
        const std::string key = param + "/" + chunk;
        std::optional<std::string> value;
        visit(key);
        try {
          value = store->Read(key, zarr::MaxStoredChunkBytes(zmeta));
          if (!value) {
            missing.push_back(key);
            return;
          }
          Count(value->size());
          checked(key, true);
          zarr::DecodeZarrChunk(zmeta, *value, "chunk " + key);
          std::lock_guard lock(mu_);
          ++report_.chunks;
        } catch (const CorruptionError& e) {
          if (!value) checked(key, true);  // refused as it was read (its CRC-32C)
          broken = true;
          Problem(label + key, e.what());
        } catch (const Error& e) {
          broken = true;
          Problem(label + key, e.what());
        }
      });
      for (size_t m = 0; m < missing.size() && m < kMaxListedMissing; ++m) {
        Problem(label + missing[m], "is missing: the array's zarr metadata implies it");
      }
      if (missing.size() > kMaxListedMissing) {
        Problem(label + param, "and " + std::to_string(missing.size() - kMaxListedMissing) +
                                   " more of its chunks are missing (" + std::to_string(missing.size()) + " of " +
                                   std::to_string(expected) + ")");
      }
      if (missing.empty() && !broken) {
        std::lock_guard lock(mu_);
        ++report_.arrays;
      }
    });
    // Values the checksums record that no array above accounts for (a parameter missing from `_METADATA`).
    for (const auto& [key, crc] : sums.chunks) {
      if (visited.count(key)) continue;
      try {
        // No zarr metadata says what the value can hold: its recorded block checksums do (a value of one block or
        // less records none); metadata keys, and values of checksum files without blocks, get the metadata cap.
        const auto blocks = sums.chunk_blocks.find(key);
        auto value = store->Read(key, blocks != sums.chunk_blocks.end()
                                          ? blocks->second.size() * md::kChecksumBlockBytes
                                          : kMaxMetadataFileBytes);
        if (!value) {
          Problem(label + key, "is missing (cairn_checksums records it)");
          continue;
        }
        Count(value->size());
        checked(key, key.find("/.zarray") == std::string::npos && key.find("/zarr.json") == std::string::npos);
      } catch (const Error& e) {
        Problem(label + key, e.what());
      }
    }
  }

  void OtherItem(const fs_ns::path& dir, const std::string& handler) {
    const bool json = handler.find("JsonCheckpointHandler") != std::string::npos;
    std::function<void(const fs_ns::path&)> walk = [&](const fs_ns::path& d) {
      for (const auto& name : fs_->ListDir(d)) {
        const auto path = d / name;
        if (fs_->IsDirectory(path)) {
          walk(path);
          continue;
        }
        if (name == io::kCommitSuccessFile) continue;  // Orbax's marker, in every item of a Composite
        if (md::IsChecksumFileName(name)) {
          // Checked with the file it belongs to; one whose file is gone means that file was lost.
          const auto file = path.parent_path() / name.substr(6, name.size() - 6 - 7);
          if (!fs_->Exists(file)) Problem(Label(path.parent_path()) + file.filename().string(), "is missing, but its "
                                          "checksum file " + name + " is there: it was written and has since been lost");
          continue;
        }
        auto text = ReadFile(path.parent_path(), name, nullptr);
        if (!text) continue;
        try {
          CheckSiblingChecksum(path, md::ChecksumFileFor(path));
          if (!json) continue;
          md::ParseJson(*text, path.string());
        } catch (const Error& e) {
          Problem(Label(path.parent_path()) + path.filename().string(), e.what());
        }
      }
    };
    walk(dir);
    if (!json) {
      const std::string label = Label(dir);
      Note((label.empty() ? std::string(".") : label.substr(0, label.size() - 1)) + ": " +
           (handler.empty() ? "no handler recorded" : "handler " + handler) +
           "; its files were read, their contents not checked");
    }
  }

  void Finish() {
    if (options_.progress) options_.progress(total_, total_);
  }

 private:
  // `path` relative to the verified path, with a trailing '/', or "" for the path itself.
  std::string Label(const fs_ns::path& path) const {
    std::string rel = path.lexically_relative(root_).generic_string();
    if (rel.empty() || rel == ".") return "";
    return rel + "/";
  }

  // Reads `dir/relative`, counting it; checked against `sums` when it records the file. nullopt (with a problem
  // reported) when it cannot be read or fails its check.
  // A file whose CRC-32C is kept in a sibling checksum file (a step's _CHECKPOINT_METADATA, a JSON item's file):
  // throws a CorruptionError naming the file (or the checksum file) when they disagree.
  void CheckSiblingChecksum(const fs_ns::path& file, const fs_ns::path& checksum_file) {
    if (!fs_->Exists(checksum_file)) return;
    md::ReadFileWithChecksum(*fs_, file, checksum_file);
    std::lock_guard lock(mu_);
    ++report_.files_checksummed;
  }

  // What a metadata file may hold, by its name: the aggregate file (which may hold whole arrays) and the checksum
  // files have caps of their own.
  static uint64_t MaxFileBytes(const std::string& relative) {
    if (relative == md::kLegacyAggregateFile) return md::kMaxAggregateFileBytes;
    if (relative.rfind(std::string(md::kChecksumsDir) + "/", 0) == 0) return md::kMaxChecksumFileBytes;
    if (relative.rfind(std::string(md::kDeltaDir) + "/", 0) == 0) return md::kMaxChecksumFileBytes;
    return kMaxMetadataFileBytes;
  }

  std::optional<std::string> ReadFile(const fs_ns::path& dir, const std::string& relative, const md::Checksums* sums) {
    const auto path = dir / relative;
    if (!fs_->Exists(path)) return std::nullopt;
    std::string text;
    try {
      text = fs_->ReadFileBelow(dir, relative, MaxFileBytes(relative));
    } catch (const Error& e) {
      Problem(Label(dir) + relative, e.what());
      return std::nullopt;
    }
    Count(text.size());
    {
      std::lock_guard lock(mu_);
      ++report_.files_checked;
    }
    if (sums) {
      if (auto it = sums->files.find(relative); it != sums->files.end()) {
        {
          std::lock_guard lock(mu_);
          ++report_.files_checksummed;
        }
        if (Crc32c(text) != it->second) {
          Problem(Label(dir) + relative, "fails its CRC-32C check: the file is not the one that was saved");
          return std::nullopt;
        }
      }
    }
    return text;
  }

  void Problem(const std::string& where, const std::string& message) {
    std::lock_guard lock(mu_);
    report_.problems.push_back({where, message});
  }
  void Note(const std::string& note) {
    std::lock_guard lock(mu_);
    report_.notes.push_back(note);
  }
  void Count(uint64_t bytes) {
    std::lock_guard lock(mu_);
    report_.bytes_read += bytes;
    if (options_.progress) options_.progress(std::min(report_.bytes_read, total_), total_);
  }

  std::shared_ptr<FileSystem> fs_;
  fs_ns::path root_;
  const VerifyOptions& options_;
  VerifyReport& report_;
  uint64_t total_ = 0;
  std::mutex mu_;
};

}  // namespace

VerifyReport VerifyCheckpoint(const std::filesystem::path& path_in, const VerifyOptions& options) {
  const auto fs = options.file_system ? options.file_system : FileSystem::Default();
  const auto [path, kind] = checkpoint::OpenCheckpointPath(*fs, path_in);
  VerifyReport report;
  report.path = path;
  report.kind = checkpoint::PathKindName(kind);
  Verifier verifier(fs, path, options, report);
  if (kind == checkpoint::PathKind::kRoot) {
    verifier.Root();
  } else {
    verifier.Step(path);
  }
  verifier.Finish();
  return report;
}

}  // namespace cairn
