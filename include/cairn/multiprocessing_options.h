// Which processes save together, and which one commits (Orbax's MultiprocessingOptions). A contract of the
// distributed layer: the checkpointers take it in their options, handlers receive it with each call.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/process_group.h"

namespace cairn {

// Which processes take part and which one commits.
struct MultiprocessingOptions {
  // The process that creates and commits directories and writes the shared metadata.
  int primary_host = 0;
  // The processes (indices in `process_group`) that take part in saves; the others do not call save at all, and
  // a checkpointer built on one of them refuses to. The checkpointers of the active processes form a subgroup
  // when they are constructed (so they must be constructed on every active process, in the same order). All
  // processes: nullopt.
  std::optional<std::vector<int>> active_processes;
  // Prepended to every barrier key, so that two checkpointers sharing a group keep their barriers apart.
  std::optional<std::string> barrier_sync_key_prefix;
  // The processes saving together; null: this process alone. MpiProcessGroup() for an MPI job.
  std::shared_ptr<ProcessGroup> process_group;
  // How long a process waits at a barrier for the others before failing with a TimeoutError (Orbax: 300 s).
  int64_t barrier_timeout_secs = 300;
};

}  // namespace cairn
