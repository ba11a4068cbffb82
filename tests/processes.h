// Running N processes in a test. In-process, each "process" is a thread with its own member of one
// LocalProcessGroups group, so the code under test makes exactly the collective calls real processes would; a
// failure on one of them is kept as that process's outcome instead of escaping its thread. (Real processes: the
// MPI programs under mpirun, tests/CMakeLists.txt; in Python, tests/python/processes.py.)
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "cairn/process_group.h"

namespace cairn::testing {

using ProcessBody = std::function<void(int process, std::shared_ptr<ProcessGroup> group)>;

// Runs body(i, members[i]) for every member at once, each on its own thread, and joins them all. Returns each
// process's exception (null where it returned).
inline std::vector<std::exception_ptr> RunOnMembers(const std::vector<std::shared_ptr<ProcessGroup>>& members,
                                                    const ProcessBody& body) {
  std::vector<std::exception_ptr> errors(members.size());
  std::vector<std::thread> threads;
  threads.reserve(members.size());
  for (size_t p = 0; p < members.size(); ++p) {
    threads.emplace_back([&, p] {
      try {
        body(static_cast<int>(p), members[p]);
      } catch (...) {
        errors[p] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

// `count` processes of a new LocalProcessGroups group.
inline std::vector<std::exception_ptr> RunProcesses(int count, const ProcessBody& body) {
  return RunOnMembers(LocalProcessGroups::Create(count), body);
}

// A test failure for every process that threw, naming the process and its error.
inline void ExpectNoErrors(const std::vector<std::exception_ptr>& errors) {
  for (size_t p = 0; p < errors.size(); ++p) {
    if (!errors[p]) continue;
    try {
      std::rethrow_exception(errors[p]);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "process " << p << ": " << e.what();
    } catch (...) {
      ADD_FAILURE() << "process " << p << ": a non-standard exception";
    }
  }
}

}  // namespace cairn::testing
