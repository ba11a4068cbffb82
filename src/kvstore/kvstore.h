// A byte store addressed by string keys. The zarr layer writes `<param>/.zarray` and `<param>/<chunk>` into one,
// so the same array code serves a plain directory (one file per key) and an OCDBT database alike
// (TensorStore's kvstore layering).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cairn {
class ReadableFile;
}

namespace cairn::kvstore {

// Where a value lies whole and uncompressed in a file: `file`'s bytes [offset, offset + size).
struct ValueLocation {
  std::shared_ptr<ReadableFile> file;
  uint64_t offset = 0;
};

// How a mapped value with a recorded checksum is checked (ChecksummedKvStore::MapValue).
enum class MapCheck {
  kOnAccess,  // each 64 KiB block when a page of it is first read (userfaultfd), else as kUpFront
  kUpFront,   // every block before the mapping is handed out
};

class KvStore {
 public:
  virtual ~KvStore() = default;

  // For Read() of a value whose size nothing bounds (tests; values the reader wrote itself).
  static constexpr uint64_t kUnbounded = UINT64_MAX;

  // The whole value, or nullopt when the key is absent. Corrupt storage throws CorruptionError naming the file;
  // so does a value of more than `max_bytes`, before anything is allocated for it. Value sizes come from the disk,
  // so readers pass what the value can hold (a chunk's worst-case encoded size, kMaxMetadataFileBytes).
  virtual std::optional<std::string> Read(std::string_view key, uint64_t max_bytes) = 0;
  std::optional<std::string> Read(std::string_view key) { return Read(key, kUnbounded); }
  // Reads the whole value of `key` straight into `out`, which must be exactly `size` bytes: restores use it to
  // land uncompressed chunks in their destination without an intermediate copy. false when the key is absent;
  // a value of another size is a CorruptionError naming the key (raised before it is read). With `crc32c`, also
  // stores the CRC-32C of the bytes read there, computed while they are still in cache (verifying a restore then
  // costs no second pass).
  virtual bool ReadInto(std::string_view key, char* out, size_t size, uint32_t* crc32c = nullptr);
  // `length` bytes of the value of `key` from `offset`; nullopt when the key is absent, InvalidArgumentError when
  // the range is not inside the value. Restores use it to read only the rows of a chunk a box needs.
  virtual std::optional<std::string> ReadRange(std::string_view key, uint64_t offset, uint64_t length);
  // Up to `length` bytes of the value of `key` from `offset` (fewer where the value ends first, none when `offset` is
  // at or past its end), with the value's size, both from one lookup; nullopt when the key is absent.
  // ChecksummedKvStore widens a ranged read to whole blocks with it, without a ValueSize lookup first. The default
  // asks ValueSize, then ReadRange.
  struct SizedRange {
    std::string bytes;
    uint64_t value_size = 0;
  };
  virtual std::optional<SizedRange> ReadRangeUpTo(std::string_view key, uint64_t offset, uint64_t length);
  // The size of the value of `key`, nullopt when absent. The default reads the value; stores that know sizes
  // without reading (a file's size, an OCDBT index entry) override it.
  virtual std::optional<uint64_t> ValueSize(std::string_view key);
  // Where the `size`-byte value of `key` lies in a file, for lazy restores: nullopt when the key is absent or the
  // store keeps the value otherwise (inline in an OCDBT node, or no such store: the default). A value of another
  // size is a CorruptionError naming the key.
  virtual std::optional<ValueLocation> LocateValue(std::string_view key, size_t size);
  // The `size`-byte value of `key` as read-only memory mapped from its file (FileSystem's
  // ReadableFile::MapReadOnly), kept mapped while the pointer lives; null when it cannot be mapped (LocateValue
  // says nowhere, the file system does not map: object stores). `check` is for stores that check values
  // (ChecksummedKvStore); others map as they are.
  virtual std::shared_ptr<const std::byte> MapValue(std::string_view key, size_t size,
                                                    MapCheck check = MapCheck::kOnAccess);
  // Stores a value. Safe to call from several threads at once. Writes may be buffered until Flush().
  virtual void Write(std::string_view key, std::string value) = 0;
  // Write() from bytes the caller keeps alive for the duration of the call: stores that put large values
  // straight into a file (OCDBT) then copy nothing. Saves use it for uncompressed whole-array chunks.
  virtual void WriteView(std::string_view key, std::string_view value) { Write(key, std::string(value)); }
  // Sorted keys starting with `prefix`.
  virtual std::vector<std::string> ListKeys(std::string_view prefix = {}) = 0;
  // Makes every write so far durable and visible to a new reader of the same location. Write-once stores (OCDBT)
  // accept no writes after Flush().
  virtual void Flush() = 0;
  // Whether the value of `key` reads in pieces (ReadRange after ReadRange) for what it costs whole: true where
  // values are local files (a read is a pread) and each piece is checked on its own, so a large compressed chunk is
  // decoded piece by piece as it is read. False (the default) where each read is a request to a server (object
  // stores), and for a value whose recorded checksum covers only the whole (each piece would read all of it).
  virtual bool ReadsInPieces(std::string_view /*key*/) const { return false; }
  // Human-readable location for error messages ("ocdbt database at /ckpt/1/default").
  virtual std::string Describe() const = 0;
  // Where the value of `key` lies, for the message of an error about it: the file (and byte range) that holds it.
  // Never throws.
  virtual std::string DescribeKey(std::string_view key) { return "key '" + std::string(key) + "' in " + Describe(); }
};

}  // namespace cairn::kvstore
