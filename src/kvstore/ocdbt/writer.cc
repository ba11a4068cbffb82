#include "kvstore/ocdbt/writer.h"

#include <zstd.h>

#include <chrono>

#include "cairn/error.h"
#include "cairn/object_store.h"
#include "core/crc32c.h"
#include "core/sha256.h"
#include "io/temporary_path.h"
#include "kvstore/ocdbt/random_id.h"
#include "kvstore/ocdbt/reader.h"
#include "kvstore/ocdbt/ocdbt.h"

namespace cairn::kvstore {
namespace ocdbt {
namespace {

constexpr uint32_t kMaxInlineValueBytes = 1u << 20;  // TensorStore rejects larger inline values when reading

void ValidateOptions(const OcdbtWriterOptions& options) {
  if (options.max_inline_value_bytes > kMaxInlineValueBytes) {
    throw InvalidArgumentError("OCDBT max_inline_value_bytes " + std::to_string(options.max_inline_value_bytes) +
                               " exceeds the format's limit of " + std::to_string(kMaxInlineValueBytes));
  }
  if (options.target_data_file_size == 0) throw InvalidArgumentError("OCDBT target_data_file_size must be positive");
  if (options.write_buffer_bytes == 0) throw InvalidArgumentError("OCDBT write_buffer_bytes must be positive");
  if (options.zstd && (options.zstd_level < ZSTD_minCLevel() || options.zstd_level > ZSTD_maxCLevel())) {
    throw InvalidArgumentError("zstd level " + std::to_string(options.zstd_level) + " is out of range");
  }
}

uint64_t NowNanos() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count());
}

}  // namespace

Config MakeConfig(const OcdbtWriterOptions& options) {
  Config config;
  config.uuid = RandomId128();
  config.manifest_kind = ManifestKind::kSingle;
  config.max_inline_value_bytes = options.max_inline_value_bytes;
  config.max_decoded_node_bytes = options.max_decoded_node_bytes;
  config.version_tree_arity_log2 = 4;
  config.compression.zstd = options.zstd;
  config.compression.zstd_level = options.zstd ? options.zstd_level : 0;
  return config;
}

DataFileWriter::Options DataFileOptions(const OcdbtWriterOptions& options) {
  DataFileWriter::Options out;
  out.target_file_size = options.target_data_file_size;
  out.buffer_bytes = options.write_buffer_bytes;
  return out;
}

std::string ReadBaseValue(FileSystem& fs, const BaseValue& value) {
  std::string out(value.length, '\0');
  auto file = fs.OpenForRead(value.file);
  if (!out.empty()) file->ReadAt(value.offset, out.size(), out.data());
  if (value.crc32c && Crc32c(out) != *value.crc32c) {
    throw CorruptionError("the delta base is damaged: bytes [" + std::to_string(value.offset) + ", " +
                          std::to_string(value.offset + value.length) + ") of " + value.file.string() +
                          " fail their CRC-32C check");
  }
  return out;
}

void CheckNoDatabase(FileSystem& fs, const std::filesystem::path& dir) {
  if (fs.Exists(dir / kOcdbtManifestFile)) {
    throw AlreadyExistsError("an OCDBT database already exists at " + dir.string() + " (" +
                             (dir / kOcdbtManifestFile).string() + ")");
  }
}

void CommitNewDatabase(FileSystem& fs, const std::filesystem::path& dir, const OcdbtWriterOptions& options,
                       std::vector<LeafEntry> entries, DataFileWriter& data) {
  ValidateOptions(options);
  Manifest manifest;
  manifest.config = MakeConfig(options);
  BtreeBuildOptions build;
  build.max_decoded_node_bytes = options.max_decoded_node_bytes;
  build.compression = manifest.config.compression;
  BuiltTree tree = BuildBtree(std::move(entries), build, data);
  // Every value and node must be durable before the manifest that points at them exists.
  data.Finish();

  VersionRef version;
  version.generation = 1;
  version.root_height = tree.height;
  version.root = tree.root;
  version.stats = tree.stats;
  version.commit_time_ns = NowNanos();
  manifest.versions.push_back(version);

  const std::filesystem::path path = dir / kOcdbtManifestFile;
  const std::filesystem::path temp = dir / (std::string(kOcdbtManifestFile) + ".tmp-" + ToLowerHex(RandomId128()));
  io::WriteFileAtomically(fs, path, temp, EncodeManifest(manifest));
}

}  // namespace ocdbt

namespace {

constexpr size_t kObjectStoreDataFiles = 4;

}  // namespace

OcdbtWriter::OcdbtWriter(std::shared_ptr<FileSystem> fs, std::filesystem::path dir, OcdbtWriterOptions options)
    : fs_(std::move(fs)),
      dir_(std::move(dir)),
      options_(options) {
  ocdbt::ValidateOptions(options);
  // On an object store each data file is one upload stream (on GCS strictly one chunk after another): more files at
  // once are more connections at work.
  const size_t lanes = std::max<size_t>(IsObjectStoreUrl(dir_.native()) ? kObjectStoreDataFiles : 1,
                                        options.parallel_data_files);
  for (size_t i = 0; i < lanes; ++i) {
    lanes_.push_back(std::make_unique<ocdbt::DataFileWriter>(fs_, dir_, ocdbt::DataFileOptions(options)));
  }
  fs_->CreateDirs(dir_);
  ocdbt::CheckNoDatabase(*fs_, dir_);
}

OcdbtWriter::~OcdbtWriter() = default;

std::string OcdbtWriter::Describe() const { return "ocdbt database at " + dir_.string() + " (being written)"; }

ocdbt::DataFileWriter& OcdbtWriter::LaneFor() {
  return *lanes_[next_lane_.fetch_add(1, std::memory_order_relaxed) % lanes_.size()];
}

void OcdbtWriter::WriteView(std::string_view key, std::string_view value) {
  if (value.size() <= options_.max_inline_value_bytes) return Write(key, std::string(value));
  if (key.size() > ocdbt::kMaxKeyLength) {
    throw InvalidArgumentError("OCDBT key of " + std::to_string(key.size()) + " bytes exceeds the 65535-byte limit (" +
                               Describe() + ")");
  }
  {
    std::lock_guard lock(mu_);
    if (flushed_) {
      throw InvalidArgumentError("cannot write key '" + std::string(key) + "': " + Describe() +
                                 " was already flushed (OCDBT stores are write-once)");
    }
  }
  Value stored = StoreLarge(key, value);
  std::lock_guard lock(mu_);
  entries_.insert_or_assign(std::string(key), std::move(stored));
}

void OcdbtWriter::Write(std::string_view key, std::string value) {
  if (key.size() > ocdbt::kMaxKeyLength) {
    throw InvalidArgumentError("OCDBT key of " + std::to_string(key.size()) + " bytes exceeds the 65535-byte limit (" +
                               Describe() + ")");
  }
  auto check_open = [&] {
    if (flushed_) {
      throw InvalidArgumentError("cannot write key '" + std::string(key) + "': " + Describe() +
                                 " was already flushed (OCDBT stores are write-once)");
    }
  };
  Value stored;
  if (value.size() > options_.max_inline_value_bytes) {
    {
      std::lock_guard lock(mu_);
      check_open();
    }
    // Appended outside mu_: the data file writer has its own lock, and other keys need not wait on this copy.
    stored = StoreLarge(key, value);
  } else {
    stored = std::move(value);
  }
  std::lock_guard lock(mu_);
  check_open();
  entries_.insert_or_assign(std::string(key), std::move(stored));
}

OcdbtReader& OcdbtWriter::ReaderLocked() {
  if (!reader_) reader_ = std::make_unique<OcdbtReader>(fs_, dir_);
  return *reader_;
}

std::optional<std::string> OcdbtWriter::Read(std::string_view key, uint64_t max_bytes) {
  std::unique_lock lock(mu_);
  if (flushed_) {
    OcdbtReader& reader = ReaderLocked();
    lock.unlock();  // the reader is thread-safe and lives as long as the writer
    return reader.Read(key, max_bytes);
  }
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  if (auto* inline_value = std::get_if<std::string>(&it->second)) return *inline_value;
  ocdbt::IndirectRef ref = std::get<ocdbt::IndirectRef>(it->second);
  if (auto shared = shared_.find(key); shared != shared_.end() && ref.offset == shared->second.offset &&
                                       ref.file.relative_path.ends_with(shared->second.file.filename().string())) {
    // Shared with the base and not linked yet: read it where it lies.
    ocdbt::BaseValue base = shared->second;
    lock.unlock();
    return ocdbt::ReadBaseValue(*fs_, base);
  }
  lock.unlock();
  for (const auto& lane : lanes_) {
    if (lane->IsCurrentFile(ref.file)) return lane->Read(ref);
  }
  return lanes_.front()->Read(ref);
}

std::vector<std::string> OcdbtWriter::ListKeys(std::string_view prefix) {
  std::unique_lock lock(mu_);
  if (flushed_) {
    OcdbtReader& reader = ReaderLocked();
    lock.unlock();
    return reader.ListKeys(prefix);
  }
  std::vector<std::string> keys;
  for (auto it = entries_.lower_bound(prefix); it != entries_.end() && it->first.starts_with(prefix); ++it) {
    keys.push_back(it->first);
  }
  return keys;
}

void OcdbtWriter::Flush() {
  std::lock_guard lock(mu_);
  if (flushed_) return;
  std::vector<ocdbt::LeafEntry> entries;
  entries.reserve(entries_.size());
  FinishDeltaLocked();
  // Copies rather than moves: if the commit fails, the writer still holds everything and Flush can be retried.
  for (const auto& [key, value] : entries_) entries.push_back(ocdbt::LeafEntry{key, value});
  for (size_t i = 1; i < lanes_.size(); ++i) lanes_[i]->Finish();
  ocdbt::CommitNewDatabase(*fs_, dir_, options_, std::move(entries), *lanes_.front());
  flushed_ = true;
  entries_.clear();
}

void OcdbtWriter::EnableDelta(std::shared_ptr<const ocdbt::DeltaBaseIndex> base, double max_changed_fraction) {
  std::lock_guard lock(mu_);
  if (flushed_ || !entries_.empty()) {
    throw InvalidArgumentError("EnableDelta must come before any write to " + Describe());
  }
  delta_ = true;
  base_ = std::move(base);
  max_changed_fraction_ = max_changed_fraction;
}

ocdbt::DeltaRecord OcdbtWriter::delta_record() const {
  std::lock_guard lock(mu_);
  return record_;
}

std::optional<ocdbt::IndirectRef> OcdbtWriter::ShareLocked(const std::string& key, const ocdbt::BaseValue& base) {
  const std::string name = base.file.filename().string();
  auto [it, inserted] = linked_.emplace(name, base.file);
  if (!inserted && it->second != base.file) return std::nullopt;
  shared_[key] = base;
  record_.bytes_shared += base.length;
  if (!base.sha256.empty()) record_.sha256[key] = base.sha256;
  if (!base.raw_sha256.empty()) record_.raw_sha256[key] = base.raw_sha256;
  if (base.raw_crc32c) record_.raw_crc32c[key] = *base.raw_crc32c;
  return ocdbt::IndirectRef{ocdbt::DataFileId{"", ocdbt::DataFileOptions(options_).relative_dir + name}, base.offset,
                            base.length};
}

bool OcdbtWriter::ShareIfUnchanged(std::string_view key, uint32_t raw_crc32c, const std::string& raw_sha256,
                                   bool base_encodes_alike) {
  std::lock_guard lock(mu_);
  if (flushed_) throw InvalidArgumentError("cannot write key '" + std::string(key) + "': " + Describe() +
                                           " was already flushed (OCDBT stores are write-once)");
  record_.raw_crc32c[std::string(key)] = raw_crc32c;
  if (raw_sha256.empty()) return false;
  record_.raw_sha256[std::string(key)] = raw_sha256;
  if (!base_ || !base_encodes_alike) return false;
  auto it = base_->by_key.find(key);
  if (it == base_->by_key.end() || it->second.raw_sha256 != raw_sha256 ||
      (it->second.raw_crc32c && *it->second.raw_crc32c != raw_crc32c)) {
    return false;
  }
  auto ref = ShareLocked(std::string(key), it->second);
  if (!ref) return false;
  entries_.insert_or_assign(std::string(key), *ref);
  return true;
}

bool OcdbtWriter::WantsStoredHash(std::string_view key) const {
  std::lock_guard lock(mu_);
  if (!record_.raw_crc32c.contains(std::string(key))) return true;
  // Known by its raw hash; a base that predates raw hashes can still share it by the stored bytes' hash.
  if (!base_) return false;
  auto it = base_->by_key.find(key);
  return it != base_->by_key.end() && it->second.raw_sha256.empty() && !it->second.sha256.empty();
}

OcdbtWriter::Value OcdbtWriter::StoreLarge(std::string_view key, std::string_view value) {
  if (!delta_) return LaneFor().Append(value);
  if (!WantsStoredHash(key)) {
    ocdbt::IndirectRef ref = LaneFor().Append(value);
    std::lock_guard lock(mu_);
    record_.bytes_written += value.size();
    return ref;
  }
  // Hashed outside mu_: several threads write at once, and hashing is the bulk of a delta save's work.
  const std::string sha = Sha256(value);
  if (base_) {
    if (auto hit = base_->key_by_hash.find(sha); hit != base_->key_by_hash.end()) {
      const ocdbt::BaseValue& candidate = base_->by_key.find(hit->second)->second;
      // Equal SHA-256 digests of unequal bytes are not known to exist (finding a pair costs about 2^128 work), so the
      // digest alone decides; the length and the base's independently recorded CRC-32C must agree as well, so that
      // even a forged or mis-recorded digest cannot make a step point at other bytes without a check failing.
      if (candidate.length == value.size() && candidate.crc32c && *candidate.crc32c == Crc32c(value)) {
        std::lock_guard lock(mu_);
        if (auto ref = ShareLocked(std::string(key), candidate)) return *ref;
      }
    }
  }
  ocdbt::IndirectRef ref = LaneFor().Append(value);
  std::lock_guard lock(mu_);
  record_.sha256[std::string(key)] = sha;
  record_.bytes_written += value.size();
  return ref;
}

bool OcdbtWriter::WriteFromBase(std::string_view key) {
  if (!base_) throw InvalidArgumentError("cannot take '" + std::string(key) + "' from a base: " + Describe() +
                                         " has none");
  std::unique_lock lock(mu_);
  if (flushed_) throw InvalidArgumentError("cannot write key '" + std::string(key) + "': " + Describe() +
                                           " was already flushed (OCDBT stores are write-once)");
  if (auto it = base_->inline_by_key.find(key); it != base_->inline_by_key.end()) {
    entries_.insert_or_assign(std::string(key), it->second);
    return true;
  }
  auto it = base_->by_key.find(key);
  if (it == base_->by_key.end()) return false;
  if (auto ref = ShareLocked(std::string(key), it->second)) {
    entries_.insert_or_assign(std::string(key), *ref);
    return true;
  }
  // Another base file already took this file's name (only possible with a hand-made base): copy the bytes.
  lock.unlock();
  std::string bytes = ocdbt::ReadBaseValue(*fs_, it->second);
  Value stored = LaneFor().Append(bytes);
  lock.lock();
  if (!it->second.sha256.empty()) record_.sha256[std::string(key)] = it->second.sha256;
  if (!it->second.raw_sha256.empty()) record_.raw_sha256[std::string(key)] = it->second.raw_sha256;
  if (it->second.raw_crc32c) record_.raw_crc32c[std::string(key)] = *it->second.raw_crc32c;
  record_.bytes_written += bytes.size();
  entries_.insert_or_assign(std::string(key), std::move(stored));
  return true;
}

void OcdbtWriter::FinishDeltaLocked() {
  if (!delta_ || shared_.empty()) return;
  const uint64_t total = record_.bytes_written + record_.bytes_shared;
  const bool copy = static_cast<double>(record_.bytes_written) > max_changed_fraction_ * static_cast<double>(total);
  if (copy) {
    // Most bytes changed: sharing the rest would keep whole base files alive for a small part of them.
    for (const auto& [key, base] : shared_) {
      auto entry = entries_.find(key);
      if (entry == entries_.end()) continue;
      std::string bytes = ocdbt::ReadBaseValue(*fs_, base);
      entry->second = LaneFor().Append(bytes);
      record_.bytes_written += base.length;
      record_.bytes_shared -= base.length;
    }
  } else {
    const std::filesystem::path data_dir = dir_ / ocdbt::DataFileOptions(options_).relative_dir;
    fs_->CreateDirs(data_dir);
    for (const auto& [name, file] : linked_) {
      // A hard link, or on an object store a server-side copy (exists: a retried Flush).
      if (!fs_->Exists(data_dir / name)) fs_->ShareFile(file, data_dir / name);
    }
    fs_->SyncDir(data_dir);
    fs_->SyncDir(dir_);
  }
  shared_.clear();
  linked_.clear();
}

std::unique_ptr<KvStore> OpenOcdbtForRead(std::shared_ptr<FileSystem> fs, std::filesystem::path dir) {
  return std::make_unique<OcdbtReader>(std::move(fs), std::move(dir));
}

std::unique_ptr<KvStore> NewOcdbtWriter(std::shared_ptr<FileSystem> fs, std::filesystem::path dir,
                                        OcdbtWriterOptions options) {
  return std::make_unique<OcdbtWriter>(std::move(fs), std::move(dir), options);
}

}  // namespace cairn::kvstore
