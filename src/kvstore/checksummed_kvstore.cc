#include "kvstore/checksummed_kvstore.h"

#include <algorithm>

#include "cairn/error.h"
#include "cairn/file_system.h"
#include "core/crc32c.h"
#include "core/thread_pool.h"
#include "kvstore/checked_pager.h"

namespace cairn::kvstore {

ChecksummedKvStore::ChecksummedKvStore(std::shared_ptr<KvStore> inner, ValueChecksums expected)
    : inner_(std::move(inner)), expected_(std::move(expected)) {}

void ChecksummedKvStore::Check(std::string_view key, uint32_t expected, uint32_t actual) {
  if (expected != actual) {
    throw CorruptionError("value " + std::string(key) + " fails its CRC-32C check: the stored bytes are not the ones "
                          "that were saved [" + inner_->DescribeKey(key) + "]");
  }
}

std::optional<std::string> ChecksummedKvStore::Read(std::string_view key, uint64_t max_bytes) {
  auto value = inner_->Read(key, max_bytes);
  auto it = expected_.whole.find(std::string(key));
  if (value && it != expected_.whole.end()) Check(key, it->second, Crc32c(*value));
  return value;
}

bool ChecksummedKvStore::ReadInto(std::string_view key, char* out, size_t size, uint32_t* crc32c) {
  auto it = expected_.whole.find(std::string(key));
  if (it == expected_.whole.end()) return inner_->ReadInto(key, out, size, crc32c);
  uint32_t crc = 0;
  if (!inner_->ReadInto(key, out, size, &crc)) return false;
  Check(key, it->second, crc);
  if (crc32c) *crc32c = crc;
  return true;
}

bool ChecksummedKvStore::ReadsInPieces(std::string_view key) const {
  const std::string k(key);
  return inner_->ReadsInPieces(key) && (expected_.blocks.count(k) || !expected_.whole.count(k));
}

std::optional<std::string> ChecksummedKvStore::ReadRange(std::string_view key, uint64_t offset, uint64_t length) {
  const std::string k(key);
  auto blocks = expected_.blocks.find(k);
  if (blocks == expected_.blocks.end()) {
    // A value with only its whole CRC (one block or less; any size in checkpoints of cairn before block CRCs):
    // read whole, in pieces, its CRC computed over all of them, keeping only the range asked for (so memory is
    // the range plus a piece, whatever size the file claims). ReadsInPieces says so, so that nobody reads such a
    // value piece by piece.
    auto whole = expected_.whole.find(k);
    if (whole == expected_.whole.end()) return inner_->ReadRange(key, offset, length);
    const std::optional<uint64_t> size = inner_->ValueSize(key);
    if (!size) return std::nullopt;
    if (offset > *size || length > *size - offset) {
      throw InvalidArgumentError("range [" + std::to_string(offset) + ", +" + std::to_string(length) +
                                 ") is outside the " + std::to_string(*size) + "-byte value of key '" + k +
                                 "' in " + Describe());
    }
    constexpr uint64_t kPiece = 16 * kCrc32cBlockBytes;
    std::string out;
    out.reserve(length);
    uint32_t crc = 0;
    for (uint64_t at = 0; at < *size;) {
      auto piece = inner_->ReadRange(key, at, std::min(kPiece, *size - at));
      if (!piece || piece->empty()) {
        throw CorruptionError("value " + k + " changed while it was read [" + inner_->DescribeKey(key) + "]");
      }
      crc = Crc32c(*piece, crc);
      const uint64_t end = at + piece->size();
      if (end > offset && at < offset + length) {  // the part of [offset, offset + length) in this piece
        const uint64_t from = std::max(at, offset), to = std::min(end, offset + length);
        out.append(*piece, from - at, to - from);
      }
      at = end;
    }
    Check(key, whole->second, crc);
    return out;
  }
  // Widen the range to whole blocks (the last one as long as the value's size leaves it). The value's size comes
  // with the bytes, from the one lookup ReadRangeUpTo makes; until it is known, the recorded block count bounds it
  // (a range past that bound reads nothing and fails one of the checks below).
  const std::vector<uint32_t>& crcs = blocks->second;
  const uint64_t recorded_end = crcs.size() * kCrc32cBlockBytes;
  uint64_t begin = 0, end = 0;
  if (offset <= recorded_end && length <= recorded_end - offset) {
    begin = offset / kCrc32cBlockBytes * kCrc32cBlockBytes;
    end = std::min<uint64_t>((offset + length + kCrc32cBlockBytes - 1) / kCrc32cBlockBytes * kCrc32cBlockBytes,
                             recorded_end);
  }
  auto read = inner_->ReadRangeUpTo(key, begin, end - begin);
  if (!read) return std::nullopt;
  const uint64_t size = read->value_size;
  if ((size + kCrc32cBlockBytes - 1) / kCrc32cBlockBytes != crcs.size()) {
    throw CorruptionError("value " + k + ": its recorded block checksums do not match its size of " +
                          std::to_string(size) + " bytes [" + inner_->DescribeKey(key) + "]");
  }
  if (offset > size || length > size - offset) {
    throw InvalidArgumentError("range [" + std::to_string(offset) + ", +" + std::to_string(length) +
                               ") is outside the " + std::to_string(size) + "-byte value of key '" + k + "' in " +
                               Describe());
  }
  const std::string* span = &read->bytes;  // [begin, min(end, size))
  for (uint64_t at = 0; at < span->size(); at += kCrc32cBlockBytes) {
    const uint64_t block = (begin + at) / kCrc32cBlockBytes;
    if (Crc32c(std::string_view(*span).substr(at, kCrc32cBlockBytes)) != crcs[block]) {
      throw CorruptionError("value " + k + ": bytes [" + std::to_string(begin + at) + ", +" +
                            std::to_string(std::min<uint64_t>(kCrc32cBlockBytes, span->size() - at)) +
                            ") fail their CRC-32C check: the stored bytes are not the ones that were saved [" +
                            inner_->DescribeKey(key) + "]");
    }
  }
  return span->substr(offset - begin, length);
}

std::shared_ptr<const std::byte> ChecksummedKvStore::MapValue(std::string_view key, size_t size, MapCheck check) {
  const std::string k(key);
  auto whole = expected_.whole.find(k);
  if (whole == expected_.whole.end()) return inner_->MapValue(key, size, check);
  auto blocks = expected_.blocks.find(k);
  const size_t count = (size + kCrc32cBlockBytes - 1) / kCrc32cBlockBytes;
  // The CRC each block must have: the recorded block CRCs, or for a value of one block, its whole CRC.
  std::vector<uint32_t> crcs;
  if (blocks != expected_.blocks.end()) {
    crcs = blocks->second;
  } else if (count <= 1) {
    crcs.assign(count, whole->second);
  } else {
    throw CorruptionError("value " + k + ": its CRC-32C is recorded without block checksums, though it is " +
                          std::to_string(size) + " bytes long [" + inner_->DescribeKey(key) + "]");
  }
  if (crcs.size() != count) {
    throw CorruptionError("value " + k + ": its recorded block checksums do not match its size of " +
                          std::to_string(size) + " bytes [" + inner_->DescribeKey(key) + "]");
  }
  auto block_error = [&](uint64_t block) {
    const uint64_t begin = block * kCrc32cBlockBytes;
    return "value " + k + ": bytes [" + std::to_string(begin) + ", +" +
           std::to_string(std::min<uint64_t>(kCrc32cBlockBytes, size - begin)) +
           ") fail their CRC-32C check: the stored bytes are not the ones that were saved [" +
           inner_->DescribeKey(key) + "]";
  };
  if (check == MapCheck::kOnAccess) {
    // Only values the inner store can map are paged (a value it cannot map is read eagerly, as elsewhere); the
    // pages are then read from the file itself, checked, and copied into the region.
    auto location = inner_->LocateValue(key, size);
    if (!location || !location->file->MapReadOnly(location->offset, size)) return nullptr;
    BlockFetcher fetch = [file = location->file, offset = location->offset, crcs](uint64_t block, char* out,
                                                                                  size_t length) {
      file->ReadAt(offset + block * kCrc32cBlockBytes, length, out);
      if (Crc32c(std::string_view(out, length)) != crcs[block]) {
        throw CorruptionError("it fails its CRC-32C check: the stored bytes are not the ones that were saved");
      }
    };
    auto region = MapCheckedOnAccess(size, std::move(fetch), "value " + k + " [" + inner_->DescribeKey(key) + "]");
    if (region) return region;
  }
  auto mapped = inner_->MapValue(key, size, check);
  if (!mapped) return nullptr;
  std::vector<char> bad(count, 0);
  ParallelFor(count, [&](size_t b) {
    const uint64_t begin = b * kCrc32cBlockBytes;
    const size_t length = static_cast<size_t>(std::min<uint64_t>(kCrc32cBlockBytes, size - begin));
    bad[b] = Crc32c(std::string_view(reinterpret_cast<const char*>(mapped.get()) + begin, length)) != crcs[b];
  });
  for (size_t b = 0; b < count; ++b) {
    if (bad[b]) throw CorruptionError(block_error(b));
  }
  return mapped;
}

void ChecksummedKvStore::RecordValue(std::string_view key, std::string_view value) {
  std::vector<uint32_t> blocks;
  const uint32_t crc = Crc32cWithBlocks(value, &blocks);
  Record(std::string(key), crc, std::move(blocks));
}

void ChecksummedKvStore::Record(const std::string& key, uint32_t crc, std::vector<uint32_t> blocks) {
  std::lock_guard lock(mu_);
  recorded_.whole[key] = crc;
  if (!blocks.empty()) recorded_.blocks[key] = std::move(blocks);
}

void ChecksummedKvStore::Write(std::string_view key, std::string value) {
  RecordValue(key, value);
  inner_->Write(key, std::move(value));
}

void ChecksummedKvStore::WriteView(std::string_view key, std::string_view value) {
  RecordValue(key, value);
  inner_->WriteView(key, value);
}

}  // namespace cairn::kvstore
