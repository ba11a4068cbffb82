// A KvStore decorator that keeps values honest (as TensorStore layers one kvstore driver over another): it records
// the CRC-32C of every value written through it, and checks every value read through it against the CRC-32C
// recorded for its key when there is one. Keys without a recorded CRC (Orbax's checkpoints) read unchecked.
//
// Values longer than one block also get one CRC-32C per block, so that a ranged read (a box that cuts an
// uncompressed chunk) is widened to whole blocks and checks each block it touches, not nothing. Whole reads
// through ReadInto take the CRC the store computed while the bytes were in cache: no second pass.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "kvstore/kvstore.h"

namespace cairn::kvstore {

struct ValueChecksums {
  std::map<std::string, uint32_t> whole;                 // key -> CRC-32C of the value
  std::map<std::string, std::vector<uint32_t>> blocks;   // key -> CRC-32C of each kCrc32cBlockBytes block
};

class ChecksummedKvStore final : public KvStore {
 public:
  // Reads are checked against `expected`; writes are recorded (recorded()).
  explicit ChecksummedKvStore(std::shared_ptr<KvStore> inner, ValueChecksums expected = {});

  // What the writes so far recorded. Call when no write is in flight.
  ValueChecksums& recorded() { return recorded_; }
  // Records a value stored by other means (a reference to a value of another database).
  void Record(const std::string& key, uint32_t crc, std::vector<uint32_t> blocks);
  KvStore& inner() { return *inner_; }

  using KvStore::Read;
  std::optional<std::string> Read(std::string_view key, uint64_t max_bytes) override;
  bool ReadInto(std::string_view key, char* out, size_t size, uint32_t* crc32c = nullptr) override;
  std::optional<std::string> ReadRange(std::string_view key, uint64_t offset, uint64_t length) override;
  std::optional<uint64_t> ValueSize(std::string_view key) override { return inner_->ValueSize(key); }
  std::optional<ValueLocation> LocateValue(std::string_view key, size_t size) override {
    return inner_->LocateValue(key, size);
  }
  // The inner store's mapping, checked: a key with a recorded CRC-32C is never handed out unchecked. kOnAccess:
  // a region whose 64 KiB blocks are read from the file and checked on first access (kvstore/checked_pager.h: a
  // bad block aborts the process, naming it); where that is not available, as kUpFront: the file is mapped and
  // every block checked on all cores first (CorruptionError naming the first bad one). Keys without a CRC (Orbax's
  // checkpoints) map unchecked. Null where the inner store cannot map the value.
  std::shared_ptr<const std::byte> MapValue(std::string_view key, size_t size,
                                            MapCheck check = MapCheck::kOnAccess) override;
  void Write(std::string_view key, std::string value) override;
  void WriteView(std::string_view key, std::string_view value) override;
  std::vector<std::string> ListKeys(std::string_view prefix = {}) override { return inner_->ListKeys(prefix); }
  void Flush() override { inner_->Flush(); }
  bool ReadsInPieces(std::string_view key) const override;
  std::string Describe() const override { return inner_->Describe(); }
  std::string DescribeKey(std::string_view key) override { return inner_->DescribeKey(key); }

 private:
  void Check(std::string_view key, uint32_t expected, uint32_t actual);
  void RecordValue(std::string_view key, std::string_view value);

  std::shared_ptr<KvStore> inner_;
  const ValueChecksums expected_;
  std::mutex mu_;  // guards recorded_ (writes come from several threads)
  ValueChecksums recorded_;
};

}  // namespace cairn::kvstore
