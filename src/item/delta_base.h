// The base of a delta save, seen from one pytree item (docs/format.md, "Delta steps"): its OCDBT values by key and
// by content, checked before anything of the new step is written.
#pragma once

#include <filesystem>
#include <memory>

#include "cairn/file_system.h"
#include "kvstore/ocdbt/delta.h"
#include "metadata/checksums.h"

namespace cairn::item {

struct DeltaBase {
  std::shared_ptr<const kvstore::ocdbt::DeltaBaseIndex> index;  // null: the base has no such item (nothing to share)
  metadata::Checksums checksums;                                // the base item's `cairn_checksums/`
};

// Reads the base item at `base_item_dir`: its root OCDBT tree, `cairn_checksums/` and `cairn_delta/`. Every data
// file a value lies in must be a regular file (not a link) holding the value's byte range. A damaged base (manifest,
// tree, sidecar or data file) is a CorruptionError saying so, before the new step writes anything. A base item
// without `cairn_delta/` (saved without delta tracking, or by Orbax) shares nothing by content; frozen parameters can
// still be taken from it.
DeltaBase LoadDeltaBase(const std::shared_ptr<FileSystem>& fs, const std::filesystem::path& base_item_dir);

}  // namespace cairn::item
