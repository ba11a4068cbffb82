// safetensors files (Hugging Face's format): reading them into a Tree of arrays and writing a Tree as one.
//
// The format: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON (the header, possibly padded with spaces),
// then the tensors' bytes, C order, little-endian, back to back. The header maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the bytes after the header) and may hold
// "__metadata__", a map of strings to strings.
//
// Names and trees: a tensor's name is its key path joined with '.', which is Orbax's parameter name and what a
// PyTorch state_dict uses ("layers.0.weight"). Loading splits names at '.' into nested dicts, so
// {"params": {"w": ...}} and back is exact; list indices come back as dict keys ("0", "1", ...), since the file
// does not say which levels were lists. A key that contains '.' cannot be written (it would not come back).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/array.h"
#include "cairn/file_system.h"
#include "cairn/tree.h"

namespace cairn::safetensors {

// The dtype names of the format ("F32", "BF16", "F8_E4M3", ...). Complex types have none: InvalidArgumentError.
std::string_view DTypeToSafetensors(DType dtype);
// UnimplementedError naming a dtype cairn has no type for (e.g. "F8_E8M0", "C64").
DType DTypeFromSafetensors(std::string_view name);

struct TensorInfo {
  std::string name;
  DType dtype = DType::kFloat32;
  Shape shape;
  uint64_t begin = 0;  // byte offsets into the data section (after the header)
  uint64_t end = 0;
};

struct Header {
  std::vector<TensorInfo> tensors;              // sorted by begin offset (the file's order)
  std::map<std::string, std::string> metadata;  // "__metadata__"
  uint64_t header_bytes = 0;                    // N
  uint64_t data_offset() const { return 8 + header_bytes; }
};

// The most header bytes a file may declare (the reference implementation's limit): a larger N is refused before
// anything is allocated.
inline constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

// Parses and validates the header of a file of `file_size` bytes whose first bytes are `prefix` (at least the
// 8-byte length and the N header bytes). Every check a reader needs before it allocates or reads anything: N
// within the file and the limit, valid UTF-8 JSON object, known dtypes, non-negative shapes whose byte size
// (computed with overflow checks) equals end - begin, tensors contiguous, not overlapping, covering the data
// section exactly. Any failure is a CorruptionError (UnimplementedError for an unknown dtype) naming `what`.
Header ParseHeader(std::string_view prefix, uint64_t file_size, const std::string& what);
// The 8-byte length of a header; CorruptionError when `prefix` is shorter than 8 bytes or N is out of bounds.
uint64_t HeaderLength(std::string_view prefix, uint64_t file_size, const std::string& what);

// Reads and validates the header of the file at `path` (no tensor bytes).
Header ReadHeader(const std::filesystem::path& path,
                  const std::shared_ptr<FileSystem>& fs = FileSystem::Default());

struct LoadOptions {
  // Split names at '.' into nested dicts (default); false: one flat dict keyed by the full names.
  bool nest = true;
  std::shared_ptr<FileSystem> file_system = FileSystem::Default();
};

struct Loaded {
  Tree tree;
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Reads every tensor of the file. Names that cannot nest (a tensor "a" and another "a.b", or an empty segment
// such as "a..b") are an InvalidArgumentError naming them; load with nest=false to get them flat.
Loaded Load(const std::filesystem::path& path, const LoadOptions& options = {});
// The same from the bytes of a whole file in memory (tests, fuzzing).
Loaded LoadFromBytes(std::string_view bytes, const std::string& what, const LoadOptions& options = {});

struct SaveOptions {
  std::map<std::string, std::string> metadata;  // written as "__metadata__" (omitted when empty)
  // Leaves safetensors cannot hold: strings and placeholders are an InvalidArgumentError naming them unless this
  // is set, when they are left out and listed in SaveResult::skipped. None and empty containers hold no data and
  // are always left out (and listed). Scalars are written as 0-d arrays (int64, float64 or bool).
  bool skip_unsupported = false;
  std::shared_ptr<FileSystem> file_system = FileSystem::Default();
};

struct SaveResult {
  std::vector<std::string> skipped;  // "name (why)"
  uint64_t bytes_written = 0;
};

// Writes `tree` to `path` atomically: a temporary file beside it, fsynced, renamed over `path`, and the directory
// fsynced. Complex arrays (the format has no complex type) and sharded arrays (gather them first) are an
// InvalidArgumentError naming them; nothing is written then.
SaveResult Save(const std::filesystem::path& path, const Tree& tree, const SaveOptions& options = {});
// The bytes of the file Save would write.
std::string SaveToBytes(const Tree& tree, const SaveOptions& options = {}, SaveResult* result = nullptr);

}  // namespace cairn::safetensors
