#include "distributed/checks.h"

#include <map>

#include "cairn/error.h"

namespace cairn::distributed {

void CheckTimeout(std::chrono::milliseconds timeout, const std::string& key) {
  if (timeout.count() < 0) {
    throw InvalidArgumentError("process group call '" + key + "': negative timeout " +
                               std::to_string(timeout.count()) + " ms");
  }
}

void CheckRoot(int root, int count, const std::string& key) {
  if (root < 0 || root >= count) {
    throw InvalidArgumentError("process group broadcast '" + key + "': root " + std::to_string(root) +
                               " is not a process index (0 .. " + std::to_string(count - 1) + ")");
  }
}

std::string JoinIndices(const std::vector<int>& indices) {
  std::string out;
  for (int i : indices) {
    if (!out.empty()) out += ", ";
    out += std::to_string(i);
  }
  return out;
}

std::string DescribeKeys(const std::vector<std::string>& keys) {
  // Grouped by key, in order of the first process that called it.
  std::vector<std::string> order;
  std::map<std::string, std::vector<int>> callers;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto& who = callers[keys[i]];
    if (who.empty()) order.push_back(keys[i]);
    who.push_back(static_cast<int>(i));
  }
  std::string out;
  for (const auto& key : order) {
    const auto& who = callers[key];
    if (!out.empty()) out += ", ";
    out += (who.size() == 1 ? "process " : "processes ") + JoinIndices(who) + " called '" + key + "'";
  }
  return out;
}

int CheckMembers(const std::vector<int>& members, int count, int index) {
  if (members.empty()) throw InvalidArgumentError("a process subgroup needs at least one member");
  int position = -1;
  for (size_t k = 0; k < members.size(); ++k) {
    if (members[k] < 0 || members[k] >= count || (k > 0 && members[k] <= members[k - 1])) {
      throw InvalidArgumentError("subgroup members must be ascending process indices below " + std::to_string(count) +
                                 ", got " + JoinIndices(members));
    }
    if (members[k] == index) position = static_cast<int>(k);
  }
  if (position < 0) {
    throw InvalidArgumentError("process " + std::to_string(index) + " is not among the subgroup members " +
                               JoinIndices(members));
  }
  return position;
}

}  // namespace cairn::distributed
