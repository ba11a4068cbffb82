#include "core/byte_budget.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "core/thread_pool.h"

namespace cairn {
namespace {

TEST(ByteBudget, BoundsBytesInFlight) {
  ByteBudget budget(100);
  std::atomic<int64_t> in_flight{0}, peak{0};
  ThreadPool pool(4);
  ParallelFor(
      64,
      [&](size_t i) {
        const uint64_t bytes = 30 + (i % 3) * 10;
        ByteBudget::Hold hold(budget, bytes);
        int64_t now = in_flight += static_cast<int64_t>(bytes);
        int64_t seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::yield();
        in_flight -= static_cast<int64_t>(bytes);
      },
      pool);
  EXPECT_LE(peak.load(), 100);
}

TEST(ByteBudget, ARequestLargerThanTheBudgetRunsAlone) {
  ByteBudget budget(10);
  ByteBudget::Hold hold(budget, 1000);  // does not wait forever
  SUCCEED();
}

}  // namespace
}  // namespace cairn
