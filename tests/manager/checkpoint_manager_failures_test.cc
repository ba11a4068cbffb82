// CheckpointManager: failed, timed-out and background-failed saves commit and delete nothing.
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

}  // namespace
}  // namespace cairn
