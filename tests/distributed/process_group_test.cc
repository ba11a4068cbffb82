#include "cairn/process_group.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <random>
#include <thread>

#include "cairn/error.h"
#include "processes.h"

namespace cairn {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Runs body(member) on one thread per member (tests/processes.h); a member's exception is a test failure.
void RunMembers(const std::vector<std::shared_ptr<ProcessGroup>>& members,
                const std::function<void(ProcessGroup&)>& body) {
  auto run = [&](int, std::shared_ptr<ProcessGroup> member) { body(*member); };
  cairn::testing::ExpectNoErrors(cairn::testing::RunOnMembers(members, run));
}

// Which error (if any) a call threw, for checks after the threads have joined.
struct Outcome {
  bool threw = false;
  ErrorCode code{};
  std::string message;
  std::chrono::milliseconds elapsed{};
};

Outcome Capture(const std::function<void()>& call) {
  Outcome out;
  const auto start = std::chrono::steady_clock::now();
  try {
    call();
  } catch (const Error& e) {
    out.threw = true;
    out.code = e.code();
    out.message = e.what();
  }
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  return out;
}

TEST(SingleProcessGroup, IsProcessZeroOfOne) {
  auto group = SingleProcessGroup();
  EXPECT_EQ(group->index(), 0);
  EXPECT_EQ(group->count(), 1);
  EXPECT_EQ(group->AllGather("abc", "k", 0ms), std::vector<std::string>{"abc"});
  group->Barrier("b", 0ms);
  EXPECT_EQ(group->Broadcast("xyz", 0, "c", 1s), "xyz");
  EXPECT_THROW(group->Broadcast("xyz", 1, "c", 1s), InvalidArgumentError);
  EXPECT_THROW(group->AllGather("abc", "k", -1ms), InvalidArgumentError);
}

// Built with MPI, the MPI group is tested under mpirun (mpi_process_group_main) instead.
#ifndef CAIRN_WITH_MPI
TEST(MpiProcessGroup, UnimplementedWithoutMpi) { EXPECT_THROW(MpiProcessGroup(), UnimplementedError); }
#endif

TEST(LocalProcessGroups, RejectsEmptyGroups) {
  EXPECT_THROW(LocalProcessGroups::Create(0), InvalidArgumentError);
  EXPECT_THROW(LocalProcessGroups::Create(-3), InvalidArgumentError);
}

class LocalGroupsOfSize : public ::testing::TestWithParam<int> {};

INSTANTIATE_TEST_SUITE_P(Sizes, LocalGroupsOfSize, ::testing::Values(1, 2, 4, 8),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

// What needs at least two members: disagreement, an absent member, a late one.
class LocalGroupsOfSeveral : public ::testing::TestWithParam<int> {};
INSTANTIATE_TEST_SUITE_P(Sizes, LocalGroupsOfSeveral, ::testing::Values(2, 4, 8),
                         [](const auto& info) { return "n" + std::to_string(info.param); });

TEST_P(LocalGroupsOfSize, IndicesAndCount) {
  auto members = LocalProcessGroups::Create(GetParam());
  ASSERT_EQ(members.size(), static_cast<size_t>(GetParam()));
  for (int i = 0; i < GetParam(); ++i) {
    EXPECT_EQ(members[i]->index(), i);
    EXPECT_EQ(members[i]->count(), GetParam());
  }
}

TEST_P(LocalGroupsOfSize, AllGatherIsInProcessOrder) {
  const int n = GetParam();
  auto members = LocalProcessGroups::Create(n);
  std::vector<std::string> expected;
  for (int i = 0; i < n; ++i) expected.push_back(i % 3 == 1 ? "" : std::string(i * 100 + 1, 'a' + i));
  RunMembers(members, [&](ProcessGroup& g) {
    // Stagger arrivals so that the order of arrival is not the order of processes.
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * (n - g.index())));
    auto all = g.AllGather(expected[g.index()], "gather", 5s);
    EXPECT_EQ(all, expected) << "on process " << g.index();
  });
}

TEST_P(LocalGroupsOfSize, BarrierWaitsForEveryone) {
  const int n = GetParam();
  auto members = LocalProcessGroups::Create(n);
  std::atomic<int> before{0};
  RunMembers(members, [&](ProcessGroup& g) {
    std::this_thread::sleep_for(std::chrono::milliseconds(g.index() * 3));
    before++;
    g.Barrier("barrier", 5s);
    EXPECT_EQ(before.load(), n) << "process " << g.index() << " left the barrier early";
  });
}

TEST_P(LocalGroupsOfSize, BroadcastFromEveryRoot) {
  const int n = GetParam();
  auto members = LocalProcessGroups::Create(n);
  RunMembers(members, [&](ProcessGroup& g) {
    for (int root = 0; root < n; ++root) {
      std::string mine = "from " + std::to_string(g.index());
      EXPECT_EQ(g.Broadcast(mine, root, "bcast" + std::to_string(root), 5s), "from " + std::to_string(root));
    }
  });
}

TEST_P(LocalGroupsOfSize, BadRootFailsAtOnce) {
  auto members = LocalProcessGroups::Create(GetParam());
  EXPECT_THROW(members[0]->Broadcast("x", GetParam(), "b", 5s), InvalidArgumentError);
  EXPECT_THROW(members[0]->Broadcast("x", -1, "b", 5s), InvalidArgumentError);
  EXPECT_THROW(members[0]->AllGather("x", "b", -5ms), InvalidArgumentError);
}

TEST_P(LocalGroupsOfSeveral, MismatchedKeysFailEveryMemberNamingBothKeys) {
  const int n = GetParam();
  auto members = LocalProcessGroups::Create(n);
  std::vector<Outcome> outcomes(n);
  RunMembers(members, [&](ProcessGroup& g) {
    const std::string key = g.index() == n - 1 ? "save/step_2" : "save/step_1";
    outcomes[g.index()] = Capture([&] { g.AllGather("x", key, 5s); });
    // The round completed (with an error) on every member: the group goes on working.
    EXPECT_EQ(g.AllGather(std::to_string(g.index()), "after", 5s).size(), static_cast<size_t>(n));
  });
  for (int i = 0; i < n; ++i) {
    SCOPED_TRACE("process " + std::to_string(i));
    EXPECT_TRUE(outcomes[i].threw);
    EXPECT_EQ(outcomes[i].code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(outcomes[i].message, HasSubstr("save/step_1"));
    EXPECT_THAT(outcomes[i].message, HasSubstr("save/step_2"));
    EXPECT_THAT(outcomes[i].message, HasSubstr("process " + std::to_string(n - 1) + " called 'save/step_2'"));
  }
}

TEST_P(LocalGroupsOfSeveral, MemberThatNeverArrivesTimesTheOthersOut) {
  const int n = GetParam();
  auto members = LocalProcessGroups::Create(n);
  members.pop_back();  // process n - 1's thread "died": it never makes the call
  std::vector<Outcome> outcomes(n - 1);
  RunMembers(members, [&](ProcessGroup& g) {
    outcomes[g.index()] = Capture([&] { g.Barrier("checkpoint/commit", 100ms); });
  });
  std::chrono::milliseconds longest{0};
  for (int i = 0; i < n - 1; ++i) {
    SCOPED_TRACE("process " + std::to_string(i));
    EXPECT_TRUE(outcomes[i].threw);
    EXPECT_EQ(outcomes[i].code, ErrorCode::kTimeout) << outcomes[i].message;
    EXPECT_THAT(outcomes[i].message, HasSubstr("'checkpoint/commit'"));
    EXPECT_THAT(outcomes[i].message, HasSubstr("process " + std::to_string(n - 1) + " had not arrived"));
    EXPECT_LT(outcomes[i].elapsed, 3s);
    longest = std::max(longest, outcomes[i].elapsed);
  }
  EXPECT_GE(longest, 100ms);
}

TEST_P(LocalGroupsOfSeveral, LateMemberAfterATimeoutFailsFast) {
  const int n = GetParam();
  auto members = LocalProcessGroups::Create(n);
  std::vector<std::shared_ptr<ProcessGroup>> early(members.begin(), members.end() - 1);
  // A first round everyone makes, then one the last member is too late for.
  std::vector<Outcome> outcomes(n);
  std::thread late([&] {
    ProcessGroup& g = *members.back();
    EXPECT_EQ(g.AllGather("z", "first", 5s).size(), static_cast<size_t>(n));
    std::this_thread::sleep_for(500ms);  // ...stuck well past the others' timeout
    outcomes[n - 1] = Capture([&] { g.AllGather("late", "second", 10s); });
  });
  RunMembers(early, [&](ProcessGroup& g) {
    EXPECT_EQ(g.AllGather("a", "first", 5s).size(), static_cast<size_t>(n));
    outcomes[g.index()] = Capture([&] { g.AllGather("early", "second", 50ms); });
  });
  late.join();
  for (int i = 0; i < n; ++i) {
    SCOPED_TRACE("process " + std::to_string(i));
    EXPECT_TRUE(outcomes[i].threw);
    EXPECT_EQ(outcomes[i].code, ErrorCode::kTimeout) << outcomes[i].message;
    EXPECT_THAT(outcomes[i].message, HasSubstr("'second'"));
  }
  // The late member failed at once instead of waiting out its 10 s for members that had given up.
  EXPECT_LT(outcomes[n - 1].elapsed, 1s);
  EXPECT_THAT(outcomes[n - 1].message, HasSubstr("unusable"));
  // The group stays broken: every later call, by anyone, fails at once.
  for (const auto& member : members) {
    Outcome after = Capture([&] { member->Barrier("third", 10s); });
    EXPECT_EQ(after.code, ErrorCode::kTimeout);
    EXPECT_LT(after.elapsed, 1s);
  }
}

TEST_P(LocalGroupsOfSize, ManyRoundsWithRandomSleeps) {
  const int n = GetParam();
  constexpr int kRounds = 300;
  auto members = LocalProcessGroups::Create(n);
  RunMembers(members, [&](ProcessGroup& g) {
    std::mt19937 rng(1234 + g.index());
    std::uniform_int_distribution<int> sleep_us(0, 300);
    for (int round = 0; round < kRounds; ++round) {
      if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us(rng)));
      const std::string key = "round " + std::to_string(round);
      switch (round % 3) {
        case 0: {
          auto all = g.AllGather(std::to_string(round * 100 + g.index()), key, 10s);
          ASSERT_EQ(all.size(), static_cast<size_t>(n));
          for (int i = 0; i < n; ++i) ASSERT_EQ(all[i], std::to_string(round * 100 + i));
          break;
        }
        case 1:
          g.Barrier(key, 10s);
          break;
        case 2: {
          const int root = round % n;
          ASSERT_EQ(g.Broadcast(std::string(round, 'b') + std::to_string(g.index()), root, key, 10s),
                    std::string(round, 'b') + std::to_string(root));
          break;
        }
      }
    }
  });
}

TEST(LocalProcessGroups, SeparateGroupsDoNotMatchEachOthersCalls) {
  // Two checkpointers, each with its own group, used by the same "processes" in different orders.
  auto a = LocalProcessGroups::Create(2);
  auto b = LocalProcessGroups::Create(2);
  std::thread first([&] {
    EXPECT_EQ(a[0]->AllGather("a0", "a", 5s), (std::vector<std::string>{"a0", "a1"}));
    EXPECT_EQ(b[0]->AllGather("b0", "b", 5s), (std::vector<std::string>{"b0", "b1"}));
  });
  std::thread second([&] {
    std::vector<std::string> from_b;
    std::thread helper([&] { from_b = b[1]->AllGather("b1", "b", 5s); });
    EXPECT_EQ(a[1]->AllGather("a1", "a", 5s), (std::vector<std::string>{"a0", "a1"}));
    helper.join();
    EXPECT_EQ(from_b, (std::vector<std::string>{"b0", "b1"}));
  });
  first.join();
  second.join();
}

TEST(LocalProcessGroups, MembersOutliveTheirSiblings) {
  auto members = LocalProcessGroups::Create(3);
  auto last = members[2];
  members.clear();
  EXPECT_EQ(last->index(), 2);
  EXPECT_THROW(last->Barrier("alone", 20ms), TimeoutError);
}

}  // namespace
}  // namespace cairn
