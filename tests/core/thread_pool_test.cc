#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace cairn {
namespace {

TEST(ParallelFor, RunsEveryIndexOnce) {
  std::vector<std::atomic<int>> hits(1000);
  ParallelFor(hits.size(), [&](size_t i) { hits[i]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  ParallelFor(0, [](size_t) { FAIL(); });
}

TEST(ParallelFor, NestedLoopsDoNotDeadlock) {
  ThreadPool pool(2);
  std::atomic<int> total{0};
  ParallelFor(8, [&](size_t) { ParallelFor(8, [&](size_t) { total++; }, pool); }, pool);
  EXPECT_EQ(total.load(), 64);
}

TEST(ParallelFor, RethrowsTheFirstError) {
  std::atomic<int> ran{0};
  EXPECT_THROW(ParallelFor(100,
                           [&](size_t i) {
                             ran++;
                             if (i == 3) throw std::runtime_error("boom");
                           }),
               std::runtime_error);
  EXPECT_GE(ran.load(), 1);
}

// A child of fork() has none of the shared pool's threads: its parallel loops run on a pool of its own, and it exits
// without waiting for its parent's workers (the pool's destructor would, forever). ThreadSanitizer builds leave this
// out: TSan ends a child of a multi-threaded process that starts threads (its die_after_fork).
#if !defined(__SANITIZE_THREAD__)
TEST(ThreadPool, AForkChildGetsAPoolOfItsOwnAndExits) {
  std::atomic<size_t> sum{0};
  ParallelFor(64, [&](size_t i) { sum += i; });  // the parent's pool is running
  ASSERT_EQ(sum.load(), 64u * 63 / 2);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(30);  // a child that hangs is killed, and its status says so
    std::atomic<size_t> child_sum{0};
    std::atomic<bool> other_thread{false};
    const auto me = std::this_thread::get_id();
    ParallelFor(64, [&](size_t i) {
      child_sum += i;
      if (std::this_thread::get_id() != me) other_thread = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    // exit(), not _exit(): static destructors run, the shared pool's among them.
    std::exit(child_sum.load() == 64u * 63 / 2 && (ThreadPool::Shared().size() < 2 || other_thread) ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child was killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}
#endif

}  // namespace
}  // namespace cairn
