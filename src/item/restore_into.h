// Restoring into the caller's arrays (RestoreArgs::fill_target): the checks made before anything is read, and the
// fill itself, for whole arrays and for the boxes of a sharded target. Kept apart from reader.cc, which only
// branches here.
#pragma once

#include <string>

#include "cairn/checkpoint_args.h"
#include "cairn/tree.h"
#include "kvstore/kvstore.h"
#include "zarr/zarr_metadata.h"

namespace cairn::item {

// Whether the leaf `target` is to be filled in place: `args` asks for it and the leaf holds arrays (an Array or a
// ShardedArray); other leaves restore as usual.
bool WantsFill(const RestoreArgs* args, const Tree& target);

// InvalidArgumentError naming `param` unless every array of `target` is writable and has the shape it will be
// filled with (the stored shape `stored_shape` for an Array, its box for a shard, and the stored shape as the
// global shape of a ShardedArray), and `args.dtype`, when set, is the target's dtype.
void CheckFillTarget(const std::string& param, const Tree& target, const Shape& stored_shape, const RestoreArgs& args);

// Reads the stored array `param` into the arrays of `target` (checked by CheckFillTarget) and returns a Tree whose
// arrays share the target's bytes.
Tree FillTarget(kvstore::KvStore& store, const std::string& param, const zarr::ZarrMetadata& metadata,
                const Tree& target);
// The same from a value held in memory (the legacy aggregate file).
Tree FillTargetFromHeld(const Array& held, const Tree& target);

}  // namespace cairn::item
