// Helpers shared by the libFuzzer targets (fuzz/*_fuzzer.cc) and the seed generator (fuzz/make_seeds.cc).
//
// The contract every target checks: a parser given any bytes either succeeds or throws a cairn::Error. Targets
// catch cairn::Error and nothing else, so any other exception escapes LLVMFuzzerTestOneInput and libFuzzer
// reports it (as a crash, through std::terminate), as it does a sanitizer report, a timeout or an allocation
// over -malloc_limit_mb.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/error.h"
#include "core/crc32c.h"
#include "kvstore/ocdbt/envelope.h"

namespace cairn::fuzz {

inline std::string_view AsBytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs `fn`; a cairn::Error is the expected outcome for bad input and is swallowed, anything else propagates.
template <typename Fn>
void IgnoreCairnErrors(Fn&& fn) {
  try {
    std::forward<Fn>(fn)();
  } catch (const cairn::Error&) {
  }
}

// --- OCDBT envelopes ---
//
// Every OCDBT object ends in a CRC-32C over the rest, and starts with magic:u32 BE | length:u64 LE. A fuzzer
// cannot forge a CRC, so without help nearly every mutated object would stop at the CRC check and the parsers
// behind it would go unexplored. The targets therefore repair length and CRC before decoding; what they test is
// everything the CRC does not protect against (a buggy or hostile writer).

inline constexpr size_t kEnvelopeHeaderBytes = 4 + 8;
inline constexpr size_t kEnvelopeCrcBytes = 4;

inline uint64_t LoadU64LE(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline void StoreU64LE(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline void StoreU32LE(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline uint32_t LoadU32BE(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// One object that is the whole of `bytes`: its length field is set to the size and its CRC recomputed (the magic
// is left as it is). Too short to hold a header and a CRC: unchanged.
inline void RepairWholeEnvelope(std::string& bytes) {
  if (bytes.size() < kEnvelopeHeaderBytes + kEnvelopeCrcBytes) return;
  StoreU64LE(bytes.data() + 4, bytes.size());
  const size_t body_end = bytes.size() - kEnvelopeCrcBytes;
  StoreU32LE(bytes.data() + body_end, Crc32c(std::string_view(bytes.data(), body_end)));
}

// A file holding objects at unknown offsets (an OCDBT data file: values and B+tree nodes back to back): every
// OCDBT magic whose length field fits in the file gets its CRC recomputed; scanning resumes after that object.
inline void RepairEnvelopesInFile(std::string& file) {
  size_t pos = 0;
  while (pos + kEnvelopeHeaderBytes + kEnvelopeCrcBytes <= file.size()) {
    const uint32_t magic = LoadU32BE(file.data() + pos);
    if (magic == kvstore::ocdbt::kManifestMagic || magic == kvstore::ocdbt::kBtreeNodeMagic ||
        magic == kvstore::ocdbt::kVersionTreeNodeMagic) {
      const uint64_t length = LoadU64LE(file.data() + pos + 4);
      if (length >= kEnvelopeHeaderBytes + kEnvelopeCrcBytes && length <= file.size() - pos) {
        const size_t body_end = pos + length - kEnvelopeCrcBytes;
        StoreU32LE(file.data() + body_end,
                   Crc32c(std::string_view(file.data() + pos, body_end - pos)));
        pos += length;
        continue;
      }
    }
    ++pos;
  }
}

// --- Several files in one input (the ocdbt_database target) ---
//
//   %%file <path>\n<contents>\n%%file <path>\n<contents>...
//
// A file's contents run up to the next "\n%%file " (which is not part of them) or the end of the input. No length
// fields, so mutations that insert or delete bytes keep the structure.
inline constexpr std::string_view kFileMarker = "%%file ";
inline constexpr std::string_view kFileSeparator = "\n%%file ";

inline std::vector<std::pair<std::string, std::string>> SplitFiles(std::string_view input) {
  std::vector<std::pair<std::string, std::string>> files;
  if (input.substr(0, kFileMarker.size()) != kFileMarker) return files;
  input.remove_prefix(kFileMarker.size());
  while (true) {
    const size_t end = input.find(kFileSeparator);
    std::string_view record = input.substr(0, end);
    const size_t newline = record.find('\n');
    if (newline != std::string_view::npos) {
      files.emplace_back(std::string(record.substr(0, newline)), std::string(record.substr(newline + 1)));
    } else {
      files.emplace_back(std::string(record), std::string());
    }
    if (end == std::string_view::npos) break;
    input.remove_prefix(end + kFileSeparator.size());
  }
  return files;
}

inline std::string JoinFiles(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out;
  for (size_t i = 0; i < files.size(); ++i) {
    out += i == 0 ? kFileMarker : kFileSeparator;
    out += files[i].first;
    out += '\n';
    out += files[i].second;
  }
  return out;
}

}  // namespace cairn::fuzz
