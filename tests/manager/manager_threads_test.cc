// One CheckpointManager called from several threads at once (issue 13): a training thread saving step after step
// while another lists the steps, restores the latest, asks for metadata and waits. Run under ThreadSanitizer by
// `make test-tsan-async`.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "cairn/cairn.h"
#include "manager/manager_test_util.h"
#include "test_util.h"

namespace cairn {
namespace {

using cairn::testing::StateAt;
using Steps = std::vector<int64_t>;

TEST(ManagerThreads, OneThreadSavesWhileAnotherListsAndRestores) {
  constexpr int64_t kSteps = 40;
  for (const bool async : {true, false}) {
    SCOPED_TRACE(async ? "async" : "sync");
    cairn::testing::TempDir dir;
    CheckpointManagerOptions options;
    options.max_to_keep = 3;
    options.enable_async_checkpointing = async;
    options.enable_background_delete = async;
    CheckpointManager mngr(dir.path(), options);
    std::atomic<bool> saving{true};
    std::atomic<int> reads{0};
    std::thread reader([&] {
      while (saving) {
        const Steps steps = mngr.all_steps();
        EXPECT_LE(steps.size(), 4u);  // the kept 3, and a save in flight
        EXPECT_TRUE(std::is_sorted(steps.begin(), steps.end()));
        (void)mngr.latest_step();
        (void)mngr.is_saving_in_progress();
        mngr.check_for_errors();
        if (!steps.empty()) {
          // The latest step, read under the same call: whatever it is, it restores whole and exact.
          const Tree restored = mngr.restore();
          const int64_t step = restored["step"].scalar<int64_t>();
          EXPECT_EQ(restored, StateAt(step));
          (void)mngr.metrics(step);
        }
        mngr.wait_until_finished();
        ++reads;
      }
    });
    for (int64_t step = 0; step < kSteps; ++step) {
      mngr.save(step, args::StandardSave{StateAt(step)}, {.metrics = {{"loss", 1.0 / (step + 1)}}});
    }
    mngr.wait_until_finished();
    saving = false;
    reader.join();
    EXPECT_EQ(mngr.all_steps(), (Steps{kSteps - 3, kSteps - 2, kSteps - 1}));
    EXPECT_EQ(mngr.restore(kSteps - 1), StateAt(kSteps - 1));
    EXPECT_GT(reads.load(), 0);
  }
}

// Two threads both waiting, closing and checking while a third saves: the finalize thread is joined once, every
// failure reaches someone, nothing hangs.
TEST(ManagerThreads, SeveralThreadsWaitAndCloseAtOnce) {
  cairn::testing::TempDir dir;
  CheckpointManagerOptions options;
  options.max_to_keep = 2;
  CheckpointManager mngr(dir.path(), options);
  std::atomic<bool> saving{true};
  auto waiter = [&] {
    while (saving) {
      mngr.wait_until_finished();
      mngr.check_for_errors();
      (void)mngr.best_step();
      (void)mngr.should_save(1000);
    }
  };
  std::thread a(waiter), b(waiter);
  for (int64_t step = 0; step < 20; ++step) mngr.save(step, args::StandardSave{StateAt(step)});
  saving = false;
  a.join();
  b.join();
  std::thread c([&] { mngr.close(); });
  mngr.close();
  c.join();
  EXPECT_EQ(mngr.all_steps(), (Steps{18, 19}));
}

}  // namespace
}  // namespace cairn
