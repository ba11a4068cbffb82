// CheckpointManager: step names, creating the root, unfinished steps, read-only use, deleting steps.
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

}  // namespace
}  // namespace cairn
