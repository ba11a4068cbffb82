// Processes simulated by threads: every call of every member is one "round" of a shared state. Member i's
// n-th call joins round n; the round completes when all members have joined, and each member leaves with all
// payloads. A member that waits past its timeout breaks the whole group (as a timed-out collective leaves an
// MPI communicator unusable): members waiting in any round, and every later call, fail at once instead of
// hanging for a member that may never come.
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>

#include "cairn/error.h"
#include "cairn/process_group.h"
#include "distributed/checks.h"

namespace cairn {
namespace {

struct Round {
  explicit Round(int count) : keys(count), payloads(count), arrived(count, false) {}
  std::vector<std::string> keys;
  std::vector<std::string> payloads;
  std::vector<bool> arrived;
  int arrivals = 0;
  int departures = 0;
  bool complete = false;
  std::string mismatch;  // set on completion when the members' keys differ: every member throws it
};

struct Shared {
  explicit Shared(int n) : count(n), next_round(n, 0) {}
  const int count;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint64_t> next_round;  // per member: the round its next call joins
  std::map<uint64_t, Round> rounds;  // rounds some member has joined and not every member has left
  std::string broken;                // once a call timed out: what happened
  // Subgroups, by member list and by how many subgroups of that list each member has asked for before: the
  // k-th Subgroup(members) call of every member lands on the same shared state.
  std::map<std::pair<std::vector<int>, uint64_t>, std::shared_ptr<Shared>> subgroups;
  std::map<std::pair<std::vector<int>, int>, uint64_t> subgroup_calls;  // (members, caller) -> calls so far
};

class LocalGroup final : public ProcessGroup {
 public:
  LocalGroup(std::shared_ptr<Shared> shared, int index) : shared_(std::move(shared)), index_(index) {}

  int index() const override { return index_; }
  int count() const override { return shared_->count; }

  std::vector<std::string> AllGather(std::string_view data, const std::string& key,
                                     std::chrono::milliseconds timeout) override {
    distributed::CheckTimeout(timeout, key);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Shared& s = *shared_;
    std::unique_lock lock(s.mu);
    if (!s.broken.empty()) {
      throw TimeoutError("local process group: call '" + key + "' on process " + std::to_string(index_) +
                         " failed at once: the group is unusable since " + s.broken);
    }
    const uint64_t number = s.next_round[index_]++;
    auto it = s.rounds.try_emplace(number, s.count).first;
    Round& round = it->second;
    round.keys[index_] = key;
    round.payloads[index_] = std::string(data);
    round.arrived[index_] = true;
    if (++round.arrivals == s.count) {
      round.complete = true;
      for (const auto& other : round.keys) {
        if (other != round.keys[0]) {
          round.mismatch = "local process group: processes reached different calls: " +
                           distributed::DescribeKeys(round.keys);
          break;
        }
      }
      s.cv.notify_all();
    } else {
      s.cv.wait_until(lock, deadline, [&] { return round.complete || !s.broken.empty(); });
      if (!round.complete) {
        if (!s.broken.empty()) {
          throw TimeoutError("local process group: call '" + key + "' on process " + std::to_string(index_) +
                             " abandoned: " + s.broken);
        }
        std::vector<int> missing;
        for (int i = 0; i < s.count; ++i) {
          if (!round.arrived[i]) missing.push_back(i);
        }
        s.broken = "call '" + key + "' timed out after " + std::to_string(timeout.count()) + " ms on process " +
                   std::to_string(index_) + " (" + (missing.size() == 1 ? "process " : "processes ") +
                   distributed::JoinIndices(missing) + " had not arrived)";
        s.cv.notify_all();
        throw TimeoutError("local process group: " + s.broken);
      }
    }
    // Complete (possibly after the group broke: a finished round still delivers).
    std::string mismatch = round.mismatch;
    std::vector<std::string> result;
    if (++round.departures == s.count) {
      result = std::move(round.payloads);
      s.rounds.erase(it);
    } else {
      result = round.payloads;
    }
    if (!mismatch.empty()) throw InvalidArgumentError(mismatch);
    return result;
  }

  std::shared_ptr<ProcessGroup> Subgroup(const std::vector<int>& members) override {
    const int position = distributed::CheckMembers(members, count(), index_);
    Shared& s = *shared_;
    std::lock_guard lock(s.mu);
    const uint64_t nth = s.subgroup_calls[{members, index_}]++;
    auto& sub = s.subgroups[{members, nth}];
    if (!sub) sub = std::make_shared<Shared>(static_cast<int>(members.size()));
    return std::make_shared<LocalGroup>(sub, position);
  }

  std::string Broadcast(std::string_view data, int root, const std::string& key,
                        std::chrono::milliseconds timeout) override {
    distributed::CheckRoot(root, count(), key);
    return ProcessGroup::Broadcast(data, root, key, timeout);
  }

 private:
  std::shared_ptr<Shared> shared_;
  const int index_;
};

}  // namespace

std::vector<std::shared_ptr<ProcessGroup>> LocalProcessGroups::Create(int count) {
  if (count < 1) {
    throw InvalidArgumentError("LocalProcessGroups::Create: count must be at least 1, got " + std::to_string(count));
  }
  auto shared = std::make_shared<Shared>(count);
  std::vector<std::shared_ptr<ProcessGroup>> members;
  members.reserve(count);
  for (int i = 0; i < count; ++i) members.push_back(std::make_shared<LocalGroup>(shared, i));
  return members;
}

}  // namespace cairn
