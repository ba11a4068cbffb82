// CheckpointManager: restarts, reload, metadata, handlers, closing, commit-file atomicity.
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

}  // namespace
}  // namespace cairn
