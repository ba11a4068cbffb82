// Steps that every process runs and that succeed or fail together.
#pragma once

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "cairn/multiprocessing_options.h"

namespace cairn::distributed {

// The group of `options` (a single process when none is set).
ProcessGroup& GroupOf(const MultiprocessingOptions& options);
bool IsPrimary(const MultiprocessingOptions& options);

// `options` with `active_processes` resolved: for a process among them, a subgroup of just those processes
// (collective over them), with primary_host renumbered into it; `*active` tells whether this process is one.
// Without active_processes, `options` as they are. InvalidArgumentError when the primary is not active.
MultiprocessingOptions ResolveActiveProcesses(const MultiprocessingOptions& options, bool* active);

// Runs `step` on this process (when `run_here`), then exchanges the outcome with every other process under
// the barrier `key` (prefixed with barrier_sync_key_prefix). If this process failed, its own exception is
// rethrown; if another failed, an AbortedError names it and its error; if a process does not arrive within
// barrier_timeout_secs, a TimeoutError. So a failure anywhere stops everyone at the same step.
void Agree(const MultiprocessingOptions& options, const std::string& key, const std::function<void()>& step,
           bool run_here = true);

}  // namespace cairn::distributed
