// Argument checks and messages shared by the ProcessGroup implementations.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace cairn::distributed {

// InvalidArgumentError unless `timeout` is zero or positive.
void CheckTimeout(std::chrono::milliseconds timeout, const std::string& key);

// InvalidArgumentError unless 0 <= root < count. Checked before any exchange, so a bad root fails at once
// instead of surfacing as std::out_of_range from the header's default Broadcast.
void CheckRoot(int root, int count, const std::string& key);

// "process 0 called 'a', processes 1, 2 called 'b'": for the error when processes reach different calls.
std::string DescribeKeys(const std::vector<std::string>& keys);

// "1, 3": process indices, for messages.
std::string JoinIndices(const std::vector<int>& indices);

// Checks a Subgroup member list against a group of `count` and returns this process's index in it.
int CheckMembers(const std::vector<int>& members, int count, int index);

}  // namespace cairn::distributed
