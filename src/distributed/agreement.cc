#include "distributed/agreement.h"

#include <algorithm>

#include "cairn/error.h"

namespace cairn::distributed {

ProcessGroup& GroupOf(const MultiprocessingOptions& options) {
  static const std::shared_ptr<ProcessGroup> single = SingleProcessGroup();
  return options.process_group ? *options.process_group : *single;
}

bool IsPrimary(const MultiprocessingOptions& options) { return GroupOf(options).index() == options.primary_host; }

MultiprocessingOptions ResolveActiveProcesses(const MultiprocessingOptions& options, bool* active) {
  *active = true;
  if (!options.active_processes) return options;
  std::vector<int> members = *options.active_processes;
  std::sort(members.begin(), members.end());
  ProcessGroup& group = GroupOf(options);
  auto primary = std::find(members.begin(), members.end(), options.primary_host);
  if (primary == members.end()) {
    throw InvalidArgumentError("MultiprocessingOptions: primary_host " + std::to_string(options.primary_host) +
                               " is not among active_processes");
  }
  if (std::find(members.begin(), members.end(), group.index()) == members.end()) {
    *active = false;
    return options;
  }
  MultiprocessingOptions resolved = options;
  resolved.process_group = group.Subgroup(members);
  resolved.primary_host = static_cast<int>(primary - members.begin());
  resolved.active_processes.reset();
  return resolved;
}

void Agree(const MultiprocessingOptions& options, const std::string& key, const std::function<void()>& step,
           bool run_here) {
  std::exception_ptr failure;
  std::string outcome = "ok";
  if (run_here) {
    try {
      step();
    } catch (const std::exception& e) {
      failure = std::current_exception();
      outcome = std::string("failed: ") + e.what();
    } catch (...) {
      failure = std::current_exception();
      outcome = "failed";
    }
  }
  ProcessGroup& group = GroupOf(options);
  if (group.count() == 1) {
    if (failure) std::rethrow_exception(failure);
    return;
  }
  const std::string full_key = options.barrier_sync_key_prefix.value_or("") + key;
  std::vector<std::string> outcomes;
  try {
    outcomes = group.AllGather(outcome, full_key, std::chrono::seconds(options.barrier_timeout_secs));
  } catch (...) {
    if (failure) std::rethrow_exception(failure);  // our own failure says more than the barrier's
    throw;
  }
  if (failure) std::rethrow_exception(failure);
  for (size_t i = 0; i < outcomes.size(); ++i) {
    if (outcomes[i] != "ok") {
      throw AbortedError("process " + std::to_string(i) + " " + outcomes[i] + " (at " + full_key + "); process " +
                         std::to_string(group.index()) + " gives up too");
    }
  }
}

}  // namespace cairn::distributed
