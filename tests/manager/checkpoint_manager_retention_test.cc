// CheckpointManager: which steps are kept (max_to_keep, best_fn, keep periods, preservation policies).
#include "cairn/checkpoint_manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "manager_test_util.h"
#include "metadata/checkpoint_metadata.h"
#include "metadata/checksums.h"
#include "metadata/python_json.h"
#include "test_util.h"

namespace cairn {
namespace {

using namespace cairn::testing::manager_test;  // fs, sdp, pp, the fixture and the helpers

TEST_P(ManagerTest, MaxToKeepKeepsTheLatest) {
  auto o = Options();
  o.max_to_keep = 3;
  CheckpointManager m(kRoot, o);
  for (int64_t step = 0; step < 10; ++step) ASSERT_TRUE(Save(m, step));
  EXPECT_EQ(m.all_steps(), (Steps{7, 8, 9}));
  m.wait_until_finished();
  EXPECT_EQ(OnDisk(), (std::set<std::string>{"7", "8", "9"}));
  EXPECT_EQ(m.latest_step(), 9);
  EXPECT_EQ(m.best_step(), 9);  // no best_fn: the latest
}

TEST_P(ManagerTest, BestFnWithMaxToKeepKeepsTheBest) {
  const double losses[] = {0.9, 0.3, 0.5, 0.1, 0.7, 0.2, 0.8};
  for (const std::string mode : {"min", "max"}) {
    SCOPED_TRACE(mode);
    fs_ = NewInMemoryFileSystem();
    auto o = Options();
    o.max_to_keep = 2;
    o.best_fn = Loss;
    o.best_mode = mode;
    CheckpointManager m(kRoot, o);
    for (int64_t step = 0; step < 7; ++step) ASSERT_TRUE(Save(m, step, losses[step]));
    m.wait_until_finished();
    const Steps expected = mode == "min" ? Steps{3, 5} : Steps{0, 6};
    EXPECT_EQ(m.all_steps(), expected);
    EXPECT_EQ(m.best_step(), mode == "min" ? 3 : 0);
    EXPECT_EQ(OnDisk().size(), 2u);
    EXPECT_EQ(m.restore(expected[0]), StateAt(expected[0]));
  }
}

TEST_P(ManagerTest, StepsWithoutMetricsAreKeptOnlyWhenAsked) {
  for (bool keep_without : {true, false}) {
    SCOPED_TRACE(keep_without);
    fs_ = NewInMemoryFileSystem();
    auto o = Options();
    o.max_to_keep = 1;
    o.best_fn = Loss;
    o.best_mode = "min";
    o.keep_checkpoints_without_metrics = keep_without;
    CheckpointManager m(kRoot, o);
    Save(m, 0, 0.5);
    Save(m, 1);
    Save(m, 2, 0.1);
    Save(m, 3);
    Save(m, 4, 0.3);
    m.wait_until_finished();
    EXPECT_EQ(m.all_steps(), keep_without ? (Steps{1, 2, 3}) : (Steps{2}));
    EXPECT_EQ(m.best_step(), 2);
  }
}

TEST_P(ManagerTest, KeepPeriodKeepsMultiplesBesidesTheLatest) {
  auto o = Options();
  o.max_to_keep = 2;
  o.keep_period = 4;
  CheckpointManager m(kRoot, o);
  for (int64_t step = 0; step < 11; ++step) Save(m, step);
  m.wait_until_finished();
  EXPECT_EQ(m.all_steps(), (Steps{0, 4, 8, 9, 10}));
  EXPECT_EQ(OnDisk(), (std::set<std::string>{"0", "4", "8", "9", "10"}));
}

TEST_P(ManagerTest, KeepTimeIntervalWithAFakeClock) {
  FakeClock clock;
  auto o = Options();
  o.max_to_keep = 1;
  o.keep_time_interval = std::chrono::seconds(60);
  o.now_nsecs = clock.fn();
  CheckpointManager m(kRoot, o);
  // A step every 25 s: kept are the first, then one at least 60 s after the last kept, and the latest.
  for (int64_t step = 0; step < 10; ++step) {
    Save(m, step);
    clock.Advance(25);
  }
  m.wait_until_finished();
  // times 0,25,50,75,100,125,150,175,200,225: kept 0 (0 s), 3 (75 s), 6 (150 s), 9 (225 s).
  EXPECT_EQ(m.all_steps(), (Steps{0, 3, 6, 9}));
}

TEST_P(ManagerTest, PreservationPolicyBest3PlusLatest2) {
  auto o = Options();
  o.preservation_policy = std::make_shared<pp::AnyPreservationPolicy>(pp::BestN(Loss, 3, /*reverse=*/true),
                                                                      pp::LatestN(2));
  CheckpointManager m(kRoot, o);
  const double losses[] = {0.9, 0.2, 0.8, 0.1, 0.7, 0.3, 0.6, 0.5, 0.4};
  for (int64_t step = 0; step < 9; ++step) Save(m, step * 10, losses[step]);
  m.wait_until_finished();
  EXPECT_EQ(m.all_steps(), (Steps{10, 30, 50, 70, 80}));
  EXPECT_EQ(OnDisk(), (std::set<std::string>{"10", "30", "50", "70", "80"}));
  for (int64_t step : m.all_steps()) EXPECT_EQ(m.restore(step), StateAt(step));

  auto bad = Options();
  bad.preservation_policy = std::make_shared<pp::LatestN>(2);
  bad.max_to_keep = 3;
  EXPECT_THROW(CheckpointManager(kRoot, bad), InvalidArgumentError);
}

TEST_P(ManagerTest, CustomStepsAndEveryNStepsPolicies) {
  auto o = Options();
  o.preservation_policy = std::make_shared<pp::AnyPreservationPolicy>(
      pp::CustomSteps({1, 2}), pp::EveryNSteps(5, true, /*max_to_keep=*/2), pp::LatestN(1));
  CheckpointManager m(kRoot, o);
  for (int64_t step = 0; step <= 17; ++step) Save(m, step);
  m.wait_until_finished();
  EXPECT_EQ(m.all_steps(), (Steps{1, 2, 10, 15, 17}));
}

}  // namespace
}  // namespace cairn
