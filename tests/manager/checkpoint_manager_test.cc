// CheckpointManager: each option and policy, the on-disk layout, restarts, failures and Orbax's own checkpoints.
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

namespace fs = std::filesystem;
namespace sdp = save_decision_policy;
namespace pp = preservation_policy;
using cairn::testing::ControlledHandler;
using cairn::testing::Entries;
using cairn::testing::FakeClock;
using cairn::testing::kSecond;
using cairn::testing::StateAt;

const fs::path kRoot = "/run";

double Loss(const nlohmann::json& metrics) { return metrics.at("loss").get<double>(); }

using Steps = std::vector<int64_t>;

// Each test runs with the asynchronous (Orbax's default) and the synchronous checkpointer.
class ManagerTest : public ::testing::TestWithParam<bool> {
 protected:
  CheckpointManagerOptions Options() const {
    CheckpointManagerOptions o;
    o.enable_async_checkpointing = GetParam();
    o.file_system = fs_;
    return o;
  }
  // Saves StateAt(step) (with `loss` as metrics when given); returns whether it saved.
  bool Save(CheckpointManager& m, int64_t step, std::optional<double> loss = std::nullopt, bool force = false) {
    CheckpointManagerSaveOptions o;
    if (loss) o.metrics = {{"loss", *loss}};
    o.force = force;
    return m.save(step, args::StandardSave{StateAt(step)}, o);
  }
  // The step directories on disk.
  std::set<std::string> OnDisk() const { return Entries(*fs_, kRoot); }

  std::shared_ptr<FileSystem> fs_ = NewInMemoryFileSystem();
};

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

TEST_P(ManagerTest, StepPrefixAndFixedLength) {
  auto o = Options();
  o.step_prefix = "step";
  o.step_format_fixed_length = 4;
  CheckpointManager m(kRoot, o);
  Save(m, 0);
  Save(m, 12);
  Save(m, 12345, std::nullopt, true);
  m.wait_until_finished();
  EXPECT_EQ(OnDisk(), (std::set<std::string>{"step_0000", "step_0012", "step_12345"}));
  // Names of another format are not this manager's steps.
  fs_->CreateDirs(kRoot / "13");
  fs_->CreateDirs(kRoot / "step_13");
  fs_->CreateDirs(kRoot / "other_0014");
  m.reload();
  EXPECT_EQ(m.all_steps(), (Steps{0, 12, 12345}));
  EXPECT_EQ(m.restore(12), StateAt(12));
}

TEST_P(ManagerTest, CreateOption) {
  auto o = Options();
  o.create = false;
  { CheckpointManager m(kRoot, o); }
  EXPECT_FALSE(fs_->Exists(kRoot));
  o.create = true;
  { CheckpointManager m(kRoot, o); }
  EXPECT_TRUE(fs_->IsDirectory(kRoot));
  // Without create, the first save still makes the root.
  auto fs2 = NewInMemoryFileSystem();
  o.create = false;
  o.file_system = fs2;
  CheckpointManager m(kRoot, o);
  Save(m, 1);
  m.wait_until_finished();
  EXPECT_EQ(m.restore(1), StateAt(1));
}

TEST_P(ManagerTest, UnfinishedStepsAreNeverListedAndCleanedUpWhenAsked) {
  {
    CheckpointManager m(kRoot, Options());
    Save(m, 1);
  }
  // What a crash leaves: cairn's and older Orbax's temporary names.
  fs_->CreateDirs(kRoot / "2.orbax-checkpoint-tmp/default");
  fs_->CreateDirs(kRoot / "3.orbax-checkpoint-tmp-1712345678");
  fs_->CreateDirs(kRoot / "1.orbax-checkpoint-tmp");
  {
    CheckpointManager m(kRoot, Options());
    EXPECT_EQ(m.all_steps(), Steps{1});
    EXPECT_EQ(OnDisk().size(), 4u);  // left alone without cleanup_tmp_directories
  }
  auto o = Options();
  o.cleanup_tmp_directories = true;
  CheckpointManager m(kRoot, o);
  EXPECT_EQ(m.all_steps(), Steps{1});
  EXPECT_EQ(OnDisk(), std::set<std::string>{"1"});
  // A re-save of an unfinished step replaces its leftovers.
  fs_->CreateDirs(kRoot / "2.orbax-checkpoint-tmp/junk");
  Save(m, 2);
  m.wait_until_finished();
  EXPECT_EQ(m.restore(2), StateAt(2));
  EXPECT_FALSE(fs_->Exists(kRoot / "2.orbax-checkpoint-tmp"));
}

TEST_P(ManagerTest, ReadOnlyNeverWrites) {
  {
    CheckpointManager m(kRoot, Options());
    Save(m, 1);
    Save(m, 2);
  }
  fs_->CreateDirs(kRoot / "9.orbax-checkpoint-tmp");
  auto o = Options();
  o.read_only = true;
  o.max_to_keep = 1;
  o.cleanup_tmp_directories = true;
  CheckpointManager m(kRoot, o, {}, nlohmann::json{{"version", 2}});
  EXPECT_FALSE(m.should_save(3));
  EXPECT_FALSE(Save(m, 3));
  EXPECT_FALSE(Save(m, 3, std::nullopt, /*force=*/true));
  m.delete_step(1);
  EXPECT_EQ(m.all_steps(), (Steps{1, 2}));
  EXPECT_EQ(OnDisk(), (std::set<std::string>{"1", "2", "9.orbax-checkpoint-tmp"}));
  EXPECT_EQ(m.restore(1), StateAt(1));
  // Read-only without root metadata on disk: the constructor's.
  EXPECT_EQ(m.metadata().custom_metadata, (nlohmann::json{{"version", 2}}));
  // Nothing is created either.
  CheckpointManager fresh("/elsewhere", o);
  EXPECT_FALSE(fs_->Exists("/elsewhere"));
}

TEST_P(ManagerTest, BackgroundDelete) {
  auto o = Options();
  o.max_to_keep = 2;
  o.enable_background_delete = true;
  {
    CheckpointManager m(kRoot, o);
    for (int64_t step = 0; step < 8; ++step) Save(m, step);
    EXPECT_EQ(m.all_steps(), (Steps{6, 7}));
    m.reload();  // steps still being deleted are not picked up again
    EXPECT_EQ(m.all_steps(), (Steps{6, 7}));
  }  // the destructor waits for the deletions
  EXPECT_EQ(OnDisk(), (std::set<std::string>{"6", "7"}));
}

TEST_P(ManagerTest, TodeleteSubdirKeepsDeletedSteps) {
  auto o = Options();
  o.max_to_keep = 1;
  o.todelete_subdir = "trash";
  CheckpointManager m(kRoot, o);
  for (int64_t step = 0; step < 3; ++step) Save(m, step);
  m.delete_step(2);
  Save(m, 3);
  m.wait_until_finished();
  EXPECT_EQ(m.all_steps(), Steps{3});
  EXPECT_EQ(OnDisk(), (std::set<std::string>{"3", "trash"}));
  EXPECT_EQ(Entries(*fs_, kRoot / "trash"), (std::set<std::string>{"0", "1", "2"}));
  // What is in the trash is a whole step.
  CheckpointerOptions plain_options;
  plain_options.file_system = fs_;
  Checkpointer plain(std::make_unique<CompositeCheckpointHandler>(), plain_options);
  EXPECT_EQ(plain.restore(kRoot / "trash/1")["default"], StateAt(1));
  // A name that would be taken for a step is refused.
  auto bad = Options();
  bad.todelete_subdir = "12";
  EXPECT_THROW(CheckpointManager(kRoot, bad), InvalidArgumentError);
  bad.todelete_subdir = "../x";
  EXPECT_THROW(CheckpointManager(kRoot, bad), InvalidArgumentError);
}

TEST(CheckpointManager, OldStepsGoOnlyAfterTheNewSaveCommits) {
  auto fs = NewInMemoryFileSystem();
  auto control = std::make_shared<ControlledHandler::Control>();
  CheckpointManagerOptions o;
  o.max_to_keep = 1;
  o.file_system = fs;
  CheckpointManager m(kRoot, o, std::make_unique<ControlledHandler>(control));
  m.save(1, args::StandardSave{StateAt(1)});
  m.wait_until_finished();
  control->hold = true;
  m.save(2, args::StandardSave{StateAt(2)});
  EXPECT_EQ(m.all_steps(), Steps{2});  // the manager's view already
  EXPECT_TRUE(m.is_saving_in_progress());
  EXPECT_NO_THROW(m.check_for_errors());
  // ... but step 1 stays on disk until step 2 has committed.
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(fs->Exists(kRoot / "1/commit_success.txt"));
    EXPECT_FALSE(fs->Exists(kRoot / "2"));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  control->release.set_value();
  m.wait_until_finished();
  EXPECT_FALSE(m.is_saving_in_progress());
  EXPECT_EQ(Entries(*fs, kRoot), std::set<std::string>{"2"});
}

TEST_P(ManagerTest, AFailedSaveDeletesNothing) {
  auto control = std::make_shared<ControlledHandler::Control>();
  auto o = Options();
  o.max_to_keep = 1;
  CheckpointManager m(kRoot, o, std::make_unique<ControlledHandler>(control));
  m.save(1, args::StandardSave{StateAt(1)});
  m.wait_until_finished();
  control->fail = true;
  if (GetParam()) {
    EXPECT_TRUE(m.save(2, args::StandardSave{StateAt(2)}));  // fails in the background
    EXPECT_THROW(m.wait_until_finished(), IoError);
    EXPECT_NO_THROW(m.wait_until_finished());  // reported once
  } else {
    EXPECT_THROW(m.save(2, args::StandardSave{StateAt(2)}), IoError);
  }
  EXPECT_EQ(m.all_steps(), Steps{1});
  EXPECT_EQ(OnDisk(), std::set<std::string>{"1"});
  EXPECT_EQ(m.restore(), StateAt(1));
  // The next save works and then deletes step 1.
  control->fail = false;
  EXPECT_TRUE(m.save(2, args::StandardSave{StateAt(2)}));
  m.wait_until_finished();
  EXPECT_EQ(m.all_steps(), Steps{2});
  EXPECT_EQ(OnDisk(), std::set<std::string>{"2"});
}

TEST(CheckpointManager, ASaveThatTimesOutCommitsAndDeletesNothing) {
  auto fs = NewInMemoryFileSystem();
  auto control = std::make_shared<ControlledHandler::Control>();
  CheckpointManagerOptions o;
  o.max_to_keep = 1;
  o.async_options.timeout_secs = 1;
  o.file_system = fs;
  CheckpointManager m(kRoot, o, std::make_unique<ControlledHandler>(control));
  m.save(1, args::StandardSave{StateAt(1)});
  m.wait_until_finished();
  control->hold = true;
  m.save(2, args::StandardSave{StateAt(2)});
  EXPECT_THROW(m.wait_until_finished(), TimeoutError);
  control->release.set_value();  // the abandoned save wakes up and must not commit
  EXPECT_EQ(m.all_steps(), Steps{1});
  EXPECT_EQ(m.restore(), StateAt(1));
  control->hold = false;
  EXPECT_TRUE(m.save(3, args::StandardSave{StateAt(3)}));
  m.close();
  EXPECT_EQ(m.all_steps(), Steps{3});
  EXPECT_FALSE(fs->Exists(kRoot / "2"));
}

TEST(CheckpointManager, ABackgroundFailureSurfacesInCheckForErrorsAndTheNextSave) {
  auto fs = NewInMemoryFileSystem();
  auto control = std::make_shared<ControlledHandler::Control>();
  CheckpointManagerOptions o;
  o.file_system = fs;
  CheckpointManager m(kRoot, o, std::make_unique<ControlledHandler>(control));
  control->fail = true;
  m.save(1, args::StandardSave{StateAt(1)});
  while (m.is_saving_in_progress()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_THROW(m.check_for_errors(), IoError);
  EXPECT_NO_THROW(m.check_for_errors());
  EXPECT_EQ(m.all_steps(), Steps{});
  m.save(2, args::StandardSave{StateAt(2)});
  EXPECT_THROW(m.save(3, args::StandardSave{StateAt(3)}), IoError);  // the failure of step 2
  control->fail = false;
  EXPECT_TRUE(m.save(3, args::StandardSave{StateAt(3)}));
  m.close();
  EXPECT_EQ(m.all_steps(), Steps{3});
}

TEST_P(ManagerTest, ARestartPicksUpStepsMetricsAndCommitTimes) {
  static constexpr double kLosses[] = {1.0, 0.9, 0.8, 0.7, 0.6};
  FakeClock clock(5'000);
  {
    auto o = Options();
    o.now_nsecs = clock.fn();
    CheckpointManager m(kRoot, o);
    for (int64_t step = 0; step < 5; ++step) Save(m, step, kLosses[step]);
  }
  // Give the steps commit times 0, 5, 10, 15 and 20 s after the clock's start (the checkpointer stamps the real
  // time; the policies must use whatever `_CHECKPOINT_METADATA` says).
  for (int64_t step = 0; step < 5; ++step) {
    const auto file = kRoot / std::to_string(step) / "_CHECKPOINT_METADATA";
    auto meta = nlohmann::ordered_json::parse(fs_->ReadFile(file));
    meta["commit_timestamp_nsecs"] = clock.now_nsecs() + step * 5 * kSecond;
    metadata::WriteFileWithChecksum(*fs_, file, metadata::PythonJsonDumps(meta),
                                    kRoot / std::to_string(step) / metadata::kCheckpointMetadataChecksumFile);
  }
  clock.Advance(25);
  auto o = Options();
  o.now_nsecs = clock.fn();
  o.max_to_keep = 1;
  o.keep_time_interval = std::chrono::seconds(10);
  CheckpointManager m(kRoot, o);
  EXPECT_EQ(m.all_steps(), (Steps{0, 1, 2, 3, 4}));
  EXPECT_EQ(m.metrics(2), (nlohmann::json{{"loss", kLosses[2]}}));
  EXPECT_FALSE(m.should_save(4));
  EXPECT_TRUE(Save(m, 5));
  m.wait_until_finished();
  // Every 10 s from the commit times (0, 10, 20 s) plus the latest.
  EXPECT_EQ(m.all_steps(), (Steps{0, 2, 4, 5}));
  for (int64_t step : m.all_steps()) EXPECT_EQ(m.restore(step), StateAt(step));

  // Metrics come back too: best_fn works across a restart.
  auto best = Options();
  best.best_fn = Loss;
  best.best_mode = "min";
  best.max_to_keep = 2;
  CheckpointManager b(kRoot, best);
  EXPECT_EQ(b.best_step(), 4);
  Save(b, 6, 0.95);
  b.wait_until_finished();
  EXPECT_EQ(b.all_steps(), (Steps{2, 4, 5}));  // 5 has no metrics and is kept
}

TEST_P(ManagerTest, ReloadSeesStepsWrittenElsewhere) {
  CheckpointManager m(kRoot, Options());
  Save(m, 1);
  m.wait_until_finished();
  {
    CheckpointManager other(kRoot, Options());
    Save(other, 5, 0.5);
    other.delete_step(1);
  }
  EXPECT_EQ(m.all_steps(), Steps{1});
  EXPECT_THROW(Save(m, 5, std::nullopt, true), AlreadyExistsError);  // on disk though not listed: never replaced
  m.reload();
  EXPECT_EQ(m.all_steps(), Steps{5});
  EXPECT_EQ(m.restore(), StateAt(5));
}

TEST_P(ManagerTest, DeleteStep) {
  CheckpointManager m(kRoot, Options());
  for (int64_t step = 0; step < 3; ++step) Save(m, step);
  m.delete_step(2);  // the save in flight, in async mode
  m.delete_step(0);
  EXPECT_EQ(m.all_steps(), Steps{1});
  EXPECT_THROW(m.delete_step(7), NotFoundError);
  m.wait_until_finished();
  EXPECT_EQ(OnDisk(), std::set<std::string>{"1"});
  EXPECT_TRUE(Save(m, 2));  // a deleted step can be saved again
  m.wait_until_finished();
  EXPECT_EQ(m.restore(2), StateAt(2));
}

TEST_P(ManagerTest, StepMetadataAndItemMetadata) {
  CheckpointManager m(kRoot, Options());
  m.save(4, args::StandardSave{StateAt(4)},
         {.metrics = {{"loss", 0.5}}, .force = false, .custom_metadata = {{"lr", 0.01}}});
  StepMetadata meta = m.metadata(4);
  EXPECT_EQ(meta.custom_metadata, (nlohmann::json{{"lr", 0.01}}));
  EXPECT_EQ(meta.metrics, (nlohmann::json{{"loss", 0.5}}));
  ASSERT_TRUE(meta.commit_timestamp_nsecs.has_value());
  const Tree specs = Tree::Dict({{"params", Tree::Dict({{"w", ArraySpec{DType::kFloat32, {2, 3}}},
                                                        {"b", ArraySpec{DType::kInt32, {3}}}})},
                                 {"step", ArraySpec{DType::kInt64, {}}}});
  EXPECT_EQ(meta.item_metadata, specs);
  EXPECT_EQ(m.item_metadata(4), specs);
  EXPECT_THROW(m.metadata(5), NotFoundError);
}

TEST_P(ManagerTest, RootMetadataIsWrittenOnce) {
  { CheckpointManager m(kRoot, Options(), {}, nlohmann::json{{"version", 1}, {"lang", "en"}}); }
  EXPECT_EQ(fs_->ReadFile(kRoot / "metadata/_ROOT_METADATA"),
            "{\"internal_metadata\": {}, \"custom_metadata\": {\"lang\": \"en\", \"version\": 1}}");
  CheckpointManager m(kRoot, Options(), {}, nlohmann::json{{"version", 2}});
  EXPECT_EQ(m.metadata().custom_metadata, (nlohmann::json{{"version", 1}, {"lang", "en"}}));
  EXPECT_EQ(m.metadata().internal_metadata, nlohmann::json::object());
  Save(m, 1);
  m.wait_until_finished();
  EXPECT_EQ(m.all_steps(), Steps{1});  // `metadata` is not a step
  EXPECT_EQ(CheckpointManager("/fresh", Options()).metadata().custom_metadata, nlohmann::json::object());
  auto no_root = Options();
  no_root.save_root_metadata = false;
  { CheckpointManager n("/other", no_root, {}, nlohmann::json{{"version", 3}}); }
  EXPECT_FALSE(fs_->Exists("/other/metadata"));
}

TEST_P(ManagerTest, ArgsMustMatchTheItemMode) {
  CheckpointManager single(kRoot, Options());
  Save(single, 1);
  EXPECT_THROW(single.save(2, args::Composite({{"state", args::Item(args::StandardSave{StateAt(2)})}})),
               InvalidArgumentError);
  EXPECT_THROW(single.restore(1, args::Composite()), InvalidArgumentError);
  CheckpointManager named("/named", Options(), {"state"});
  EXPECT_THROW(named.save(1, args::StandardSave{StateAt(1)}), InvalidArgumentError);
  EXPECT_THROW(named.save(1, args::Composite({{"metrics", args::Item(args::JsonSave{{{"a", 1}}})}})),
               InvalidArgumentError);  // reserved
  EXPECT_THROW(CheckpointManager("/bad", Options(), {"metrics"}), InvalidArgumentError);
  EXPECT_THROW(named.save(1, args::Composite(), {.metrics = {{"loss", 1.0}}}), InvalidArgumentError);
  EXPECT_EQ(named.all_steps(), Steps{});
  EXPECT_THROW(Save(single, -1, std::nullopt, true), InvalidArgumentError);
  EXPECT_THROW(single.save(5, args::StandardSave{StateAt(5)}, {.metrics = 3.0}), InvalidArgumentError);
  EXPECT_THROW(single.restore(99), NotFoundError);
  EXPECT_THROW(CheckpointManager("/empty", Options()).restore(), NotFoundError);
}

TEST_P(ManagerTest, ExplicitHandlers) {
  CheckpointHandlerMap handlers;
  handlers["state"] = std::make_unique<PyTreeCheckpointHandler>(PyTreeCheckpointHandlerOptions{.use_ocdbt = false});
  handlers["notes"] = std::make_unique<JsonCheckpointHandler>("notes.json");
  CheckpointManager m(kRoot, Options(), std::move(handlers));
  m.save(1, args::Composite({{"state", args::Item(args::PyTreeSave{StateAt(1)})},
                             {"notes", args::Item(args::JsonSave{{{"text", "hi"}}})}}));
  m.wait_until_finished();
  EXPECT_TRUE(fs_->Exists(kRoot / "1/notes/notes.json"));
  EXPECT_FALSE(fs_->Exists(kRoot / "1/state/manifest.ocdbt"));
  Tree back = m.restore(1);
  EXPECT_EQ(back["state"], StateAt(1));
  EXPECT_EQ(back["notes"]["text"].string(), "hi");
}

TEST_P(ManagerTest, CloseWaitsAndIsIdempotent) {
  CheckpointManager m(kRoot, Options());
  Save(m, 1);
  m.close();
  EXPECT_FALSE(m.is_saving_in_progress());
  EXPECT_TRUE(fs_->Exists(kRoot / "1/commit_success.txt"));
  m.close();
  EXPECT_THROW(Save(m, 2), InvalidArgumentError);
}

TEST_P(ManagerTest, CommitFileAtomicity) {
  auto o = Options();
  o.atomicity_options = AtomicityOptions{.mode = AtomicityMode::kCommitFile};
  {
    CheckpointManager m(kRoot, o);
    Save(m, 1);
    Save(m, 2);
  }
  EXPECT_FALSE(fs_->Exists(kRoot / "1.orbax-checkpoint-tmp"));
  fs_->RemoveFile(kRoot / "2/commit_success.txt");  // as if the commit never happened
  {
    CheckpointManager m(kRoot, o);
    EXPECT_EQ(m.all_steps(), Steps{1});
    EXPECT_TRUE(fs_->Exists(kRoot / "2"));
  }
  o.cleanup_tmp_directories = true;
  CheckpointManager m(kRoot, o, {}, nlohmann::json{{"a", 1}});
  EXPECT_FALSE(fs_->Exists(kRoot / "2"));
  EXPECT_TRUE(Save(m, 2));
  m.wait_until_finished();
  EXPECT_EQ(m.restore(2), StateAt(2));
  EXPECT_TRUE(fs_->IsDirectory(kRoot / "metadata"));  // not taken for an unfinished step
}

TEST(CheckpointManager, BarriersAreNamedAfterOrbaxs) {
  auto fs = NewInMemoryFileSystem();
  std::mutex mu;
  std::vector<std::string> keys;
  CheckpointManagerOptions o;
  o.max_to_keep = 1;
  o.async_options.barrier_sync_fn = [&](const std::string& key, int64_t timeout_ms) {
    // The manager's barriers wait barrier_timeout_secs (Orbax's coordination timeout); the checkpointer's, the
    // save's timeout_secs.
    EXPECT_EQ(timeout_ms, key.find("CheckpointManager:") != std::string::npos ? 300'000 : 600'000) << key;
    std::lock_guard lock(mu);
    keys.push_back(key);
  };
  o.multiprocessing_options.barrier_sync_key_prefix = "run1/";
  o.file_system = fs;
  CheckpointManager m(kRoot, o, {}, nlohmann::json{{"a", 1}});
  m.save(1, args::StandardSave{StateAt(1)});
  m.save(2, args::StandardSave{StateAt(2)});
  m.delete_step(2);
  m.close();
  std::lock_guard lock(mu);
  for (const char* key : {"run1/CheckpointManager:create_directory", "run1/CheckpointManager:save_root_metadata",
                          "run1/CheckpointManager:save_start", "run1/CheckpointManager:old_steps_to_remove",
                          "run1/CheckpointManager:deleted_step", "run1/save_start", "run1/async_commit_complete"}) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << key;
  }
}

// Two processes (threads with a local process group): they meet at the manager's barriers in the same order, and
// only the primary host (here process 1) deletes and writes the root metadata.
TEST(CheckpointManager, ProcessesMeetAtTheManagersBarriers) {
  auto fs = NewInMemoryFileSystem();
  {
    CheckpointManagerOptions o;
    o.file_system = fs;
    CheckpointManager m(kRoot, o);
    m.save(1, args::StandardSave{StateAt(1)});
    m.save(2, args::StandardSave{StateAt(2)});
  }
  fs->CreateDirs(kRoot / "3.orbax-checkpoint-tmp");
  auto groups = LocalProcessGroups::Create(2);
  std::vector<std::exception_ptr> errors(2);
  std::vector<std::vector<int64_t>> seen(2);
  std::vector<std::thread> processes;
  for (int i = 0; i < 2; ++i) {
    processes.emplace_back([&, i] {
      try {
        CheckpointManagerOptions o;
        o.cleanup_tmp_directories = true;
        o.multiprocessing_options.primary_host = 1;
        o.multiprocessing_options.process_group = groups[static_cast<size_t>(i)];
        o.multiprocessing_options.barrier_timeout_secs = 20;
        o.file_system = fs;
        CheckpointManager m(kRoot, o, {}, nlohmann::json{{"process", i}});
        m.delete_step(1);
        seen[static_cast<size_t>(i)] = m.all_steps();
        m.close();
      } catch (...) {
        errors[static_cast<size_t>(i)] = std::current_exception();
      }
    });
  }
  for (auto& p : processes) p.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  EXPECT_EQ(seen[0], Steps{2});
  EXPECT_EQ(seen[1], Steps{2});
  EXPECT_EQ(Entries(*fs, kRoot), (std::set<std::string>{"2", "metadata"}));
  CheckpointManagerOptions o;
  o.file_system = fs;
  EXPECT_EQ(CheckpointManager(kRoot, o).metadata().custom_metadata, (nlohmann::json{{"process", 1}}));
}

// Runs fn(process, group) on `count` threads, one per simulated process; returns each one's exception.
std::vector<std::exception_ptr> RunProcesses(int count,
                                             const std::function<void(int, std::shared_ptr<ProcessGroup>)>& fn) {
  auto groups = LocalProcessGroups::Create(count);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(count));
  std::vector<std::thread> threads;
  for (int p = 0; p < count; ++p) {
    threads.emplace_back([&, p] {
      try {
        fn(p, groups[static_cast<size_t>(p)]);
      } catch (...) {
        errors[static_cast<size_t>(p)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  return errors;
}

void ExpectNoErrors(const std::vector<std::exception_ptr>& errors) {
  for (size_t p = 0; p < errors.size(); ++p) {
    if (!errors[p]) continue;
    try {
      std::rethrow_exception(errors[p]);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "process " << p << ": " << e.what();
    }
  }
}

// Two processes save a run together: asynchronous saves, metrics, retention; each process holds the same steps
// and restores the same state. Their clocks disagree, yet they save the same steps: the primary decides.
TEST(CheckpointManager, TwoProcessesSaveARunTogether) {
  auto fs = NewInMemoryFileSystem();
  std::vector<std::vector<int64_t>> held(2), saved(2);
  ExpectNoErrors(RunProcesses(2, [&](int p, std::shared_ptr<ProcessGroup> group) {
    FakeClock clock(1000 + p * 100);  // the clocks disagree, and process 1's runs faster
    CheckpointManagerOptions o;
    o.save_decision_policy = std::make_shared<sdp::ContinuousCheckpointingPolicy>(/*minimum_interval_secs=*/10);
    o.preservation_policy = std::make_shared<pp::AnyPreservationPolicy>(
        pp::BestN(Loss, 1, /*reverse=*/true), pp::LatestN(2));
    o.cleanup_tmp_directories = true;
    o.multiprocessing_options.process_group = group;
    o.multiprocessing_options.barrier_timeout_secs = 30;
    o.file_system = fs;
    o.now_nsecs = clock.fn();
    CheckpointManager m(kRoot, o, {}, nlohmann::json{{"run", "two"}});
    for (int64_t step = 0; step < 12; ++step) {
      clock.Advance(p == 0 ? 4 : 7);
      m.wait_until_finished();  // so that "a save in progress" does not depend on timing here
      const double loss = step == 3 ? 0.01 : 1.0 / (step + 1);
      if (m.save(step, args::StandardSave{StateAt(step)}, {.metrics = {{"loss", loss}}})) {
        saved[static_cast<size_t>(p)].push_back(step);
      }
    }
    m.wait_until_finished();
    held[static_cast<size_t>(p)] = m.all_steps();
    for (int64_t step : m.all_steps()) EXPECT_EQ(m.restore(step), StateAt(step)) << "process " << p;
    m.close();
  }));
  // Process 0's clock (4 s a step): the first step, then every third (12 s). Process 1's alone would save every
  // second step.
  EXPECT_EQ(saved[0], (Steps{0, 3, 6, 9}));
  EXPECT_EQ(saved[1], saved[0]);
  EXPECT_EQ(held[0], (Steps{3, 6, 9}));
  EXPECT_EQ(held[1], held[0]);
  EXPECT_EQ(Entries(*fs, kRoot), (std::set<std::string>{"3", "6", "9", "metadata"}));
}

// With active_processes, the active ones save; another process may read the run but not save.
TEST(CheckpointManager, ActiveProcessesSaveAndTheOthersOnlyRead) {
  auto fs = NewInMemoryFileSystem();
  std::atomic<int> done{0};
  ExpectNoErrors(RunProcesses(3, [&](int p, std::shared_ptr<ProcessGroup> group) {
    CheckpointManagerOptions o;
    o.max_to_keep = 2;
    o.multiprocessing_options.process_group = group;
    o.multiprocessing_options.active_processes = std::vector<int>{0, 2};
    o.multiprocessing_options.primary_host = 2;
    o.multiprocessing_options.barrier_timeout_secs = 30;
    o.file_system = fs;
    CheckpointManager m(kRoot, o);
    if (p == 1) {
      EXPECT_THROW(m.save(0, args::StandardSave{StateAt(0)}), InvalidArgumentError);
      return;
    }
    for (int64_t step = 0; step < 4; ++step) m.save(step, args::StandardSave{StateAt(step)});
    m.close();
    EXPECT_EQ(m.all_steps(), (Steps{2, 3}));
    ++done;
  }));
  EXPECT_EQ(done.load(), 2);
  CheckpointManagerOptions o;
  o.read_only = true;
  o.file_system = fs;
  CheckpointManager reader(kRoot, o);
  EXPECT_EQ(reader.all_steps(), (Steps{2, 3}));
  EXPECT_EQ(reader.restore(), StateAt(3));
}

TEST(CheckpointManager, OptionsAreValidated) {
  auto fs = NewInMemoryFileSystem();
  auto make = [&](auto tweak) {
    CheckpointManagerOptions o;
    o.file_system = fs;
    tweak(o);
    CheckpointManager m(kRoot, o);
  };
  EXPECT_THROW(make([](auto& o) { o.best_mode = "best"; }), InvalidArgumentError);
  EXPECT_THROW(make([](auto& o) { o.max_to_keep = -1; }), InvalidArgumentError);
  EXPECT_THROW(make([](auto& o) { o.save_interval_steps = -1; }), InvalidArgumentError);
  EXPECT_THROW(make([](auto& o) { o.keep_period = 0; }), InvalidArgumentError);
  EXPECT_THROW(make([](auto& o) { o.step_prefix = "a/b"; }), InvalidArgumentError);
  EXPECT_THROW(make([](auto& o) {
                 o.enable_async_checkpointing = false;
                 o.async_options.post_finalization_callback = [] {};
               }),
               InvalidArgumentError);
  EXPECT_THROW(make([](auto& o) { o.multiprocessing_options.active_processes = std::vector<int>{1}; }),
               InvalidArgumentError);  // the primary is not active
  EXPECT_NO_THROW(make([](auto& o) { o.save_interval_steps = 0; }));
  EXPECT_THROW(CheckpointManager(kRoot, {.file_system = fs}, {}, nlohmann::json::array()), InvalidArgumentError);
}

// (A synchronous manager rejects the callback: see the options test above.)
TEST(CheckpointManager, PostFinalizationCallbackRunsForEachAsyncSave) {
  std::atomic<int> calls{0};
  CheckpointManagerOptions o;
  o.enable_async_checkpointing = true;
  o.file_system = NewInMemoryFileSystem();
  o.async_options.post_finalization_callback = [&] { ++calls; };
  CheckpointManager m(kRoot, o);
  m.save(1, args::StandardSave{StateAt(1)});
  m.save(2, args::StandardSave{StateAt(2)});
  m.wait_until_finished();
  EXPECT_EQ(calls.load(), 2);
}

TEST(CheckpointManager, PreventWriteMetricsKeepsThemInMemoryOnly) {
  auto fs = NewInMemoryFileSystem();
  CheckpointManagerOptions o;
  o.max_to_keep = 1;
  o.best_fn = Loss;
  o.prevent_write_metrics = true;
  o.file_system = fs;
  CheckpointManager m(kRoot, o);
  m.save(1, args::StandardSave{StateAt(1)}, {.metrics = {{"loss", 2.0}}});
  m.save(2, args::StandardSave{StateAt(2)}, {.metrics = {{"loss", 1.0}}});
  m.wait_until_finished();
  EXPECT_EQ(m.all_steps(), Steps{1});  // best (max) by the in-memory metrics
  EXPECT_FALSE(fs->Exists(kRoot / "1/metrics"));
  EXPECT_EQ(m.metrics(1), std::nullopt);
}

TEST(CheckpointManager, LightweightInitializeReadsNoStepMetadata) {
  auto fs = NewInMemoryFileSystem();
  CheckpointManagerOptions o;
  o.file_system = fs;
  {
    CheckpointManager m(kRoot, o);
    m.save(1, args::StandardSave{StateAt(1)}, {.metrics = {{"loss", 2.0}}});
  }
  fs->WriteFile(kRoot / "1/_CHECKPOINT_METADATA", "not json");
  o.lightweight_initialize = true;
  o.best_fn = Loss;
  CheckpointManager m(kRoot, o);
  EXPECT_EQ(m.all_steps(), Steps{1});
  EXPECT_EQ(m.best_step(), std::nullopt);  // its metrics were not read
}

TEST(CheckpointManager, PosixRootWithPermissions) {
  cairn::testing::TempDir dir;
  CheckpointManagerOptions o;
  o.file_options.path_permission_mode = 0750;
  CheckpointManager m(dir / "run", o);
  m.save(1, args::StandardSave{StateAt(1)});
  m.wait_until_finished();
  EXPECT_EQ(fs::status(dir / "run").permissions() & fs::perms::all,
            fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  EXPECT_EQ(m.restore(1), StateAt(1));
}

// Orbax wrote these: a manager over a root holding them lists them and restores them without being told the
// items' handlers.
TEST(CheckpointManager, OrbaxCompositeFixturesAreListedAndRestore) {
  cairn::testing::TempDir dir;
  const auto fixtures = cairn::testing::FixturesDir();
  fs::copy(fixtures / "v0_checkpoints/composite_checkpoint/checkpoint_metadata_present/pytree_checkpointable_has_metadata",
           dir / "3", fs::copy_options::recursive);
  fs::copy(fixtures / "v1_checkpoints/composite_checkpoint/checkpoint_metadata_present/pytree_checkpointable_has_metadata",
           dir / "4", fs::copy_options::recursive);
  fs::copy(fixtures / "v0_checkpoints/composite_checkpoint/checkpoint_metadata_missing/pytree_checkpointable_has_metadata",
           dir / "5", fs::copy_options::recursive);
  const Tree expected = Tree::Dict({{"a", Array::FromVector<int32_t>({8}, {0, 1, 2, 3, 4, 5, 6, 7})},
                                    {"b", Tree::Dict({{"c", Array::FromVector<int32_t>({3}, {1, 2, 3})}})}});
  CheckpointManagerOptions o;
  o.max_to_keep = 2;
  CheckpointManager m(dir.path(), o);
  EXPECT_EQ(m.all_steps(), (Steps{3, 4, 5}));
  EXPECT_EQ(m.latest_step(), 5);
  Tree v0 = m.restore(3);
  EXPECT_EQ(v0["state"], expected);
  EXPECT_EQ(v0["metadata"]["metadata"].string(), "json_data");
  EXPECT_EQ(m.restore(4)["state"], expected);
  EXPECT_EQ(m.restore(5, args::Composite({{"state", args::Item(args::StandardRestore{})}}))["state"], expected);
  EXPECT_EQ(m.metadata(3).custom_metadata["custom"], "meta");
  EXPECT_EQ(m.item_metadata(3)["state"], Tree::Dict({{"a", ArraySpec{DType::kInt32, {8}}},
                                                     {"b", Tree::Dict({{"c", ArraySpec{DType::kInt32, {3}}}})}}));
  // cairn's next step joins them, and retention treats them as any other step.
  args::Composite next;
  next.add("state", args::StandardSave{StateAt(6)});
  EXPECT_TRUE(m.save(6, next));
  m.wait_until_finished();
  EXPECT_EQ(m.all_steps(), (Steps{5, 6}));
  EXPECT_FALSE(fs::exists(dir / "3"));
  EXPECT_EQ(m.restore(6)["state"], StateAt(6));
}

}  // namespace
}  // namespace cairn
