// One AsyncCheckpointer called from several threads at once (issue 13): saves from two threads, restores and waits
// from others. Saves are serialised, each restore sees a finished checkpoint, every wait returns. Run under
// ThreadSanitizer by `make test-tsan-async`.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "cairn/cairn.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;

Tree State(int64_t n) {
  return Tree::Dict({{"w", cairn::testing::Iota({16, 8})}, {"n", Tree::Scalar(n)}});
}

TEST(AsyncCheckpointerThreads, SavesRestoresAndWaitsFromSeveralThreads) {
  cairn::testing::TempDir dir;
  StandardCheckpointer ckptr;
  constexpr int kSavesPerThread = 12;
  std::atomic<int> savers_left{2};
  auto saver = [&](int thread) {
    for (int i = 0; i < kSavesPerThread; ++i) {
      const int64_t n = thread * 100 + i;
      ckptr.save(dir / std::to_string(n), State(n));
    }
    --savers_left;
  };
  std::atomic<int> restored{0};
  auto restorer = [&] {
    while (savers_left > 0) {
      ckptr.wait_until_finished();
      ckptr.check_for_errors();
      (void)ckptr.is_saving_in_progress();
      for (const auto& entry : fs::directory_iterator(dir.path())) {
        const std::string name = entry.path().filename().string();
        if (name.find("orbax-checkpoint-tmp") != std::string::npos) continue;  // a save in flight
        const Tree back = ckptr.restore(entry.path());
        EXPECT_EQ(back, State(std::stoll(name))) << name;
        ++restored;
      }
    }
  };
  std::thread s1(saver, 1), s2(saver, 2), r1(restorer), r2(restorer);
  s1.join();
  s2.join();
  r1.join();
  r2.join();
  ckptr.wait_until_finished();
  for (int thread : {1, 2}) {
    for (int i = 0; i < kSavesPerThread; ++i) {
      const int64_t n = thread * 100 + i;
      EXPECT_EQ(ckptr.restore(dir / std::to_string(n)), State(n));
    }
  }
  EXPECT_GT(restored.load(), 0);
}

}  // namespace
}  // namespace cairn
