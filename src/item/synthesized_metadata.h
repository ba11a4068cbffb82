// An item's tree metadata when its `_METADATA` is missing (Orbax restores such checkpoints by what is stored): the
// parameters are rebuilt from the zarr arrays in the store, the values of a legacy msgpack aggregate file and the
// strings of `_strings.json`.
#pragma once

#include <nlohmann/json.hpp>

#include "cairn/tree.h"
#include "kvstore/kvstore.h"
#include "metadata/tree_metadata.h"

namespace cairn::item {

// The leaves of `aggregate` (the decoded `checkpoint` file; None when there is none) first, in its order: values held
// there (skip_deserialize) and placeholders for arrays stored beside it. Then every other parameter with zarr
// metadata in `store`, as a dict path split at '.'; then the names in `strings` (`_strings.json`, null when none).
metadata::TreeMetadata SynthesizeTreeMetadata(kvstore::KvStore& store, const nlohmann::json& strings,
                                              const Tree& aggregate);

}  // namespace cairn::item
