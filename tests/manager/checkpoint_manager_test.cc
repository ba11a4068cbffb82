// CheckpointManager: items, metrics and the save decision (intervals, steps, policies, preemption, force).
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

INSTANTIATE_TEST_SUITE_P(AsyncAndSync, ManagerTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Async" : "Sync"; });

TEST_P(ManagerTest, SingleUnnamedItemLivesInDefault) {
  CheckpointManager m(kRoot, Options());
  EXPECT_TRUE(Save(m, 0));
  m.wait_until_finished();
  EXPECT_TRUE(fs_->IsDirectory(kRoot / "0/default"));
  EXPECT_TRUE(fs_->Exists(kRoot / "0/default/_METADATA"));
  EXPECT_TRUE(fs_->Exists(kRoot / "0/commit_success.txt"));
  EXPECT_FALSE(fs_->Exists(kRoot / "0/metrics"));
  const auto meta = nlohmann::json::parse(fs_->ReadFile(kRoot / "0/_CHECKPOINT_METADATA"));
  EXPECT_EQ(meta["item_handlers"]["default"],
            "orbax.checkpoint._src.handlers.standard_checkpoint_handler.StandardCheckpointHandler");
  EXPECT_EQ(m.all_steps(), Steps{0});
  EXPECT_EQ(m.restore(0), StateAt(0));
  EXPECT_EQ(m.restore(), StateAt(0));
  // With a target: cast to float64.
  Tree target = Tree::Dict({{"params", Tree::Dict({{"w", ArraySpec{DType::kFloat64, {2, 3}}},
                                                   {"b", ArraySpec{DType::kInt32, {3}}}})},
                            {"step", ArraySpec{DType::kInt64, {}}}});
  Tree cast = m.restore(0, args::StandardRestore{target});
  EXPECT_EQ(cast["params"]["w"].array().dtype(), DType::kFloat64);
  EXPECT_EQ(cast["params"]["w"].array().Cast(DType::kFloat32), StateAt(0)["params"]["w"].array());
}

TEST_P(ManagerTest, NamedItemsAndMetrics) {
  CheckpointManager m(kRoot, Options(), {"state", "config"});
  args::Composite items;
  items.add("state", args::StandardSave{StateAt(3)}).add("config", args::JsonSave{{{"lr", 0.1}, {"name", "run"}}});
  EXPECT_TRUE(m.save(3, items, {.metrics = {{"loss", 0.25}, {"accuracy", 0.5}}}));
  m.wait_until_finished();
  EXPECT_TRUE(fs_->IsDirectory(kRoot / "3/state"));
  EXPECT_TRUE(fs_->Exists(kRoot / "3/config/metadata"));
  // Metrics: the JSON item `metrics`, file `metrics`, as Python's json.dumps writes it.
  EXPECT_EQ(fs_->ReadFile(kRoot / "3/metrics/metrics"), "{\"accuracy\": 0.5, \"loss\": 0.25}");
  EXPECT_EQ(m.metrics(3), (nlohmann::json{{"loss", 0.25}, {"accuracy", 0.5}}));
  EXPECT_EQ(m.metrics(4), std::nullopt);

  Tree all = m.restore(3);
  EXPECT_EQ(all["state"], StateAt(3));
  EXPECT_EQ(all["config"]["lr"].scalar<double>(), 0.1);
  EXPECT_EQ(all["metrics"]["loss"].scalar<double>(), 0.25);
  Tree some = m.restore(3, args::Composite({{"state", args::Item(args::StandardRestore{})}}));
  EXPECT_EQ(some.size(), 1u);
  EXPECT_EQ(some["state"], StateAt(3));
}

TEST_P(ManagerTest, SaveIntervalAndTheInitialSave) {
  auto o = Options();
  o.save_interval_steps = 5;
  CheckpointManager m(kRoot, o);
  EXPECT_TRUE(m.should_save(3));  // InitialSavePolicy: nothing saved yet
  Steps saved;
  for (int64_t step = 3; step <= 21; ++step) {
    if (Save(m, step)) saved.push_back(step);
  }
  EXPECT_EQ(saved, (Steps{3, 5, 10, 15, 20}));
  EXPECT_EQ(m.all_steps(), saved);
  EXPECT_FALSE(m.should_save(20));  // not after the latest
  EXPECT_FALSE(m.should_save(15));
  EXPECT_TRUE(m.should_save(25));
}

TEST_P(ManagerTest, SaveOnSteps) {
  auto o = Options();
  o.save_interval_steps = 10;
  o.save_on_steps = {3, 7, 12};
  CheckpointManager m(kRoot, o);
  Steps saved;
  for (int64_t step = 0; step <= 20; ++step) {
    if (Save(m, step)) saved.push_back(step);
  }
  EXPECT_EQ(saved, (Steps{0, 3, 7, 10, 12, 20}));
}

TEST_P(ManagerTest, ShouldSaveFnReplacesTheIntervalsAndTheInitialSave) {
  auto o = Options();
  o.save_interval_steps = 2;
  o.save_on_steps = {5};
  std::vector<std::pair<int64_t, std::optional<int64_t>>> calls;
  o.should_save_fn = [&](int64_t step, std::optional<int64_t> last) {
    calls.emplace_back(step, last);
    return step % 3 == 0;
  };
  CheckpointManager m(kRoot, o);
  Steps saved;
  for (int64_t step = 1; step <= 10; ++step) {
    if (Save(m, step)) saved.push_back(step);
  }
  EXPECT_EQ(saved, (Steps{3, 6, 9}));
  EXPECT_EQ(calls.front(), (std::pair<int64_t, std::optional<int64_t>>{1, std::nullopt}));
  EXPECT_EQ(calls.back(), (std::pair<int64_t, std::optional<int64_t>>{10, 9}));
}

TEST_P(ManagerTest, SaveDecisionPolicyReplacesTheOtherOptions) {
  auto o = Options();
  o.save_interval_steps = 1;
  o.save_decision_policy = std::make_shared<sdp::AnySavePolicy>(sdp::SpecificStepsPolicy({4, 8}),
                                                                sdp::FixedIntervalPolicy(100));
  CheckpointManager m(kRoot, o);
  Steps saved;
  for (int64_t step = 1; step <= 200; ++step) {
    if (Save(m, step)) saved.push_back(step);
  }
  EXPECT_EQ(saved, (Steps{4, 8, 100, 200}));
}

TEST_P(ManagerTest, PreemptionSavesOffInterval) {
  auto o = Options();
  o.save_interval_steps = 100;
  o.reached_preemption_fn = [](int64_t step) { return step == 37; };
  CheckpointManager m(kRoot, o);
  Steps saved;
  for (int64_t step = 0; step < 50; ++step) {
    if (Save(m, step)) saved.push_back(step);
  }
  EXPECT_EQ(saved, (Steps{0, 37}));
  EXPECT_TRUE(m.reached_preemption(37));
}

TEST(CheckpointManager, ContinuousCheckpointingWithAFakeClock) {
  auto fs = NewInMemoryFileSystem();
  FakeClock clock;
  auto control = std::make_shared<ControlledHandler::Control>();
  CheckpointManagerOptions o;
  o.save_decision_policy = std::make_shared<sdp::ContinuousCheckpointingPolicy>(/*minimum_interval_secs=*/10);
  o.file_system = fs;
  o.now_nsecs = clock.fn();
  CheckpointManager m(kRoot, o, std::make_unique<ControlledHandler>(control));
  EXPECT_TRUE(m.save(1, args::StandardSave{StateAt(1)}));
  m.wait_until_finished();
  clock.Advance(5);
  EXPECT_FALSE(m.should_save(2));  // too soon
  clock.Advance(5);
  EXPECT_TRUE(m.should_save(2));
  control->hold = true;
  EXPECT_TRUE(m.save(2, args::StandardSave{StateAt(2)}));
  clock.Advance(60);
  EXPECT_TRUE(m.is_saving_in_progress());
  EXPECT_FALSE(m.should_save(3));  // a save is in flight
  EXPECT_FALSE(m.save(3, args::StandardSave{StateAt(3)}));
  control->release.set_value();
  m.wait_until_finished();
  EXPECT_FALSE(m.is_saving_in_progress());
  EXPECT_TRUE(m.save(3, args::StandardSave{StateAt(3)}));
  EXPECT_EQ(m.all_steps(), (Steps{1, 2, 3}));
}

TEST_P(ManagerTest, ForceSavesAnyStepButNeverOverwrites) {
  auto o = Options();
  o.save_interval_steps = 10;
  CheckpointManager m(kRoot, o);
  EXPECT_TRUE(Save(m, 0));
  EXPECT_FALSE(Save(m, 7));
  EXPECT_TRUE(Save(m, 7, std::nullopt, /*force=*/true));
  EXPECT_TRUE(Save(m, 3, std::nullopt, /*force=*/true));  // before the latest: kept in step order
  EXPECT_EQ(m.all_steps(), (Steps{0, 3, 7}));
  EXPECT_THROW(Save(m, 7, std::nullopt, /*force=*/true), AlreadyExistsError);
  m.wait_until_finished();
  EXPECT_EQ(m.restore(7), StateAt(7));
  EXPECT_EQ(m.restore(3), StateAt(3));
}

}  // namespace
}  // namespace cairn
