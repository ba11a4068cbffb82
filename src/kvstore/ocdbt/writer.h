// Writes a new OCDBT database holding exactly one generation, as an Orbax save does.
//
// Write() is thread-safe. Values larger than max_inline_value_bytes are appended to data files as they arrive
// (buffered into large sequential writes); smaller ones are kept in memory for the leaves. Flush() sorts the keys,
// builds the B+tree into the data files, fsyncs them, and finally writes `manifest.ocdbt` (temp file, fsync,
// rename, directory fsync): until then no reader sees a database.
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cairn/file_system.h"
#include "kvstore/kvstore.h"
#include "kvstore/ocdbt/btree_builder.h"
#include "kvstore/ocdbt/data_file_writer.h"
#include "kvstore/ocdbt/delta.h"
#include "kvstore/ocdbt/manifest.h"
#include "kvstore/ocdbt/ocdbt.h"

namespace cairn::kvstore {

class OcdbtReader;

class OcdbtWriter final : public KvStore {
 public:
  OcdbtWriter(std::shared_ptr<FileSystem> fs, std::filesystem::path dir, OcdbtWriterOptions options = {});
  ~OcdbtWriter() override;

  using KvStore::Read;
  // Sees every write so far, flushed or not.
  std::optional<std::string> Read(std::string_view key, uint64_t max_bytes) override;
  // Last write of a key wins. InvalidArgumentError after Flush() or for a key over 65535 bytes.
  void Write(std::string_view key, std::string value) override;
  // Large values are appended to the data file straight from `value`.
  void WriteView(std::string_view key, std::string_view value) override;
  std::vector<std::string> ListKeys(std::string_view prefix = {}) override;
  // Commits generation 1. Later calls do nothing.
  void Flush() override;
  std::string Describe() const override;

  // Delta saves (delta.h). From now on every out-of-line value is hashed (SHA-256) as it is written. With `base`,
  // a value whose hash, length and CRC-32C all equal a base value's is not appended: at Flush the base's data file
  // is shared into this database's `d/` (FileSystem::ShareFile: a hard link, or a server-side copy) and the entry
  // points at the same byte range. If more than `max_changed_fraction` of the out-of-line bytes turn out new, Flush
  // copies the shared values into this database's own files instead (a full database, keeping none of the base's
  // files alive). Call before any write.
  void EnableDelta(std::shared_ptr<const ocdbt::DeltaBaseIndex> base, double max_changed_fraction);
  // Takes `key`'s value from the base as it is, without its bytes (a parameter declared unchanged). false when the
  // base has no such key. Requires EnableDelta with a base.
  bool WriteFromBase(std::string_view key);
  // A chunk about to be encoded, known by the CRC-32C and (unless empty: not computed) the SHA-256 of its bytes
  // before encoding, which are recorded. When `base_encodes_alike` (the caller has checked that the base stores the
  // key's array with the same dtype, chunk shape and codec) and the base holds `key` with that same raw SHA-256, the
  // base's stored value is shared as WriteFromBase does and true is returned: the caller need not encode the chunk.
  // Otherwise false, and the value the caller then writes under `key` is not hashed again (its raw digests identify
  // it), unless the base knows that key only by its stored bytes' hash.
  bool ShareIfUnchanged(std::string_view key, uint32_t raw_crc32c, const std::string& raw_sha256,
                        bool base_encodes_alike);
  // The hashes and byte counts of the values written so far (final after Flush).
  ocdbt::DeltaRecord delta_record() const;

 private:
  using Value = std::variant<std::string, ocdbt::IndirectRef>;

  // The reference to `base` once its file is linked as `d/<its name>`; nullopt when a different base file already
  // took that name (the value is then written anew). Requires mu_.
  std::optional<ocdbt::IndirectRef> ShareLocked(const std::string& key, const ocdbt::BaseValue& base);
  // Stores an out-of-line value: shared with the base when delta tracking finds it there, appended otherwise.
  Value StoreLarge(std::string_view key, std::string_view value);
  // Whether StoreLarge hashes the stored bytes of `key` (not when ShareIfUnchanged recorded its raw digests).
  bool WantsStoredHash(std::string_view key) const;
  // Before the tree is built: links the base files the shared values lie in, or copies those values.
  void FinishDeltaLocked();

  OcdbtReader& ReaderLocked();  // requires mu_ and flushed_

  const std::shared_ptr<FileSystem> fs_;
  const std::filesystem::path dir_;
  const OcdbtWriterOptions options_;
  // Out-of-line values are spread over these; B+tree nodes go to the first at Flush.
  std::vector<std::unique_ptr<ocdbt::DataFileWriter>> lanes_;
  std::atomic<size_t> next_lane_{0};
  ocdbt::DataFileWriter& LaneFor();

  mutable std::mutex mu_;
  std::map<std::string, Value, std::less<>> entries_;  // std::string orders bytes as unsigned, as OCDBT does
  bool flushed_ = false;
  std::unique_ptr<OcdbtReader> reader_;  // serves reads once the entries have gone into the tree

  bool delta_ = false;
  std::shared_ptr<const ocdbt::DeltaBaseIndex> base_;
  double max_changed_fraction_ = 1.0;
  ocdbt::DeltaRecord record_;                                     // guarded by mu_
  std::map<std::string, std::filesystem::path> linked_;           // `d/<name>` -> the base file it links (mu_)
  std::map<std::string, ocdbt::BaseValue, std::less<>> shared_;   // key -> where its shared bytes lie (mu_)
};

namespace ocdbt {

// The config a writer with `options` puts in its manifest (a fresh random uuid each call).
Config MakeConfig(const OcdbtWriterOptions& options);

// Builds the tree of `entries` (full keys, sorted and unique) into `data`, finishes the data files and commits
// the manifest of `dir` with that tree as generation 1. Shared by OcdbtWriter::Flush and the merge.
void CommitNewDatabase(FileSystem& fs, const std::filesystem::path& dir, const OcdbtWriterOptions& options,
                       std::vector<LeafEntry> entries, DataFileWriter& data);

// AlreadyExistsError when `dir` already holds a database; a writer never replaces one.
void CheckNoDatabase(FileSystem& fs, const std::filesystem::path& dir);

DataFileWriter::Options DataFileOptions(const OcdbtWriterOptions& options);

// The bytes of a base value, checked against its CRC-32C when one is recorded (CorruptionError naming the file).
std::string ReadBaseValue(FileSystem& fs, const BaseValue& value);

}  // namespace ocdbt
}  // namespace cairn::kvstore
