// The processes that save and restore one checkpoint together: index, count, barriers with timeouts, and
// exchange of small byte strings. The default is a single process; an MPI implementation joins every process
// of an MPI job (Orbax does the same over JAX's coordination service).
//
// Every process must make the same calls in the same order (the `key` of each call is checked: a process that
// reaches a different barrier is an error, not a hang). A call that does not complete within its timeout throws
// TimeoutError naming the key, so a dead or stuck process makes the others fail instead of waiting forever.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cairn {

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;

  virtual int index() const = 0;  // 0 .. count() - 1
  virtual int count() const = 0;

  // Every process contributes `data`; each gets all contributions, in process order.
  virtual std::vector<std::string> AllGather(std::string_view data, const std::string& key,
                                             std::chrono::milliseconds timeout) = 0;

  // The processes `members` (indices in this group, ascending, without repeats) as a group of their own, in
  // which member members[k] has index k. Only the members call it, all with the same list, in the same order
  // as their other calls on this group; the others carry on without waiting. InvalidArgumentError when this
  // process is not among `members`.
  virtual std::shared_ptr<ProcessGroup> Subgroup(const std::vector<int>& members) = 0;

  // Returns once every process has reached the barrier `key`.
  virtual void Barrier(const std::string& key, std::chrono::milliseconds timeout) { AllGather({}, key, timeout); }
  // `data` from process `root`, on every process.
  virtual std::string Broadcast(std::string_view data, int root, const std::string& key,
                                std::chrono::milliseconds timeout) {
    return AllGather(index() == root ? data : std::string_view(), key, timeout).at(static_cast<size_t>(root));
  }
};

// One process: index 0 of 1; every call returns at once.
std::shared_ptr<ProcessGroup> SingleProcessGroup();

// All processes of the MPI job (its own communicator, duplicated from MPI_COMM_WORLD, so that two checkpointers
// never match each other's barriers; every process must create them in the same order). Initialises MPI with
// MPI_THREAD_MULTIPLE if the program has not. UnimplementedError when cairn was built without MPI.
std::shared_ptr<ProcessGroup> MpiProcessGroup();

// `count` processes simulated by threads of this process, for tests. Calls block
// until every member has made the matching call, exactly as real processes would. Create(n)[i] is process i.
class LocalProcessGroups {
 public:
  static std::vector<std::shared_ptr<ProcessGroup>> Create(int count);
};

}  // namespace cairn
