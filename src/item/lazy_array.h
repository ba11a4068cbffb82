// Lazy restores (RestoreArgs::lazy): an array returned over a mapping of its file where its layout allows, decided
// here; reader.cc only branches here.
#pragma once

#include <optional>
#include <string>

#include "cairn/array.h"
#include "cairn/checkpoint_args.h"
#include "kvstore/kvstore.h"
#include "zarr/zarr_metadata.h"

namespace cairn::item {

// The stored array `param` as a read-only mapped Array of `shape` and `dtype`, when `args` asks for a lazy restore
// and the layout allows it (zarr::MapZarrRegion); nullopt to read it eagerly.
std::optional<Array> MapLazily(kvstore::KvStore& store, const std::string& param, const zarr::ZarrMetadata& metadata,
                               const Shape& shape, DType dtype, const RestoreArgs* args);

}  // namespace cairn::item
