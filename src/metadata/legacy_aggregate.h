// The legacy msgpack aggregate file: `checkpoint` beside `_METADATA` in older Orbax and Flax checkpoints.
//
// Its format is Flax's `flax.serialization.msgpack_serialize` (Orbax keeps a copy in `msgpack_utils.py`): one
// msgpack value, normally a map of maps, whose leaves are
//   - ext type 1 (ndarray): a nested msgpack array [shape, dtype name, C-order bytes];
//   - ext type 2 (native complex): a nested msgpack array [real, imag];
//   - ext type 3 (NumPy scalar): like ext 1, for a 0-d array;
//   - ext type 4 (tuple, Orbax only): a nested msgpack array of further values;
//   - plain msgpack ints, floats, bools, strings and nil.
// An array over 2**30 bytes is split into a map {'__msgpack_chunked_array__': True, 'shape': {'0': d0, ...},
// 'chunks': {'0': flat chunk, ...}}, reassembled here. Orbax writes the string "PLACEHOLDER://<name>" for a leaf
// whose value lives elsewhere (a zarr array beside this file).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/tree.h"

namespace cairn::metadata {

inline constexpr const char* kLegacyAggregateFile = "checkpoint";
// The most an aggregate file may hold. Orbax puts only leaves it aggregates there (arrays go to zarr), but a Flax
// checkpoint may keep whole arrays in it, so it may exceed kMaxMetadataFileBytes; beyond this, its size is taken
// for damage (a sparse or foreign file) and it is refused before it is read.
inline constexpr uint64_t kMaxAggregateFileBytes = uint64_t{1} << 30;
inline constexpr std::string_view kAggregatePlaceholderPrefix = "PLACEHOLDER://";

// Decodes a whole aggregate file into a Tree:
//   maps -> Tree::Dict (string keys; integer keys become their decimal text), msgpack arrays -> Tree::List,
//   ext 4 -> Tree::Tuple, ndarray -> Array, NumPy scalar -> 0-d Array, native complex -> 0-d complex128 Array,
//   ints/floats/bools -> Tree::Scalar, strings -> Tree(std::string), nil -> None; chunked arrays reassembled.
// Sequences Flax or Orbax turned into maps keyed '0', '1', ... stay dicts: the caller knows from `_METADATA`.
// Anything malformed throws CorruptionError naming `what`; valid-but-unsupported content (unknown NumPy
// dtypes, bytes leaves, integers above int64) throws UnimplementedError.
Tree DecodeMsgpackAggregate(std::string_view bytes, const std::string& what);

// True for a string leaf starting with "PLACEHOLDER://": Orbax stored that value outside the aggregate file.
bool IsAggregatePlaceholder(const Tree& leaf);

}  // namespace cairn::metadata
