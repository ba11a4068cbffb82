#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

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

}  // namespace
}  // namespace cairn
