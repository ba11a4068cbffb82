// What an asynchronous save must do before it returns: make the save's arguments independent of the caller.
#pragma once

#include <memory>

#include "cairn/checkpoint_args.h"
#include "checkpoint/staging_pool.h"

namespace cairn::checkpoint {

// A copy of `args` whose arrays the caller can no longer change: owned and borrowed arrays are copied into
// staging buffers (in parallel, large arrays split into pieces); shared immutable arrays are kept as they are,
// without copying a byte.
std::unique_ptr<CheckpointArgs> SnapshotArgs(const CheckpointArgs& args, StagingPool& pool);

// The same for one tree.
Tree SnapshotTree(const Tree& tree, StagingPool& pool);

}  // namespace cairn::checkpoint
