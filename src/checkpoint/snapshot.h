// What an asynchronous save must do before it returns: make the save's arguments independent of the caller.
#pragma once

#include <memory>

#include "cairn/checkpoint_args.h"
#include "checkpoint/cow_snapshot.h"
#include "checkpoint/staging_pool.h"

namespace cairn::checkpoint {

// A copy of `args` whose arrays the caller can no longer change: with `cow`, owned arrays that qualify are
// write-protected in place (cow_snapshot.h; the writer must read them inside a SnapshotRead); the other owned
// arrays and borrowed ones are copied into staging buffers (in parallel, large arrays split into pieces); shared
// immutable arrays are kept as they are, without copying a byte.
std::unique_ptr<CheckpointArgs> SnapshotArgs(const CheckpointArgs& args, StagingPool& pool, CowSnapshot* cow = nullptr);

// The same for one tree.
Tree SnapshotTree(const Tree& tree, StagingPool& pool, CowSnapshot* cow = nullptr);

}  // namespace cairn::checkpoint
