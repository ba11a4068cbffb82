// Checkpointer, AsyncCheckpointer and CheckpointManager on s3:// and gs:// URLs, against the real servers: the
// commit-file protocol (no rename), force, retention, unfinished steps, and paths given with no options at all
// (FileSystem::Default() routes them from the environment).
#include <gtest/gtest.h>

#include "cairn/cairn.h"
#include "cairn/object_store.h"
#include "checkpoint/layout.h"
#include "object_store_env.h"
#include "test_util.h"

namespace cairn {
namespace {

using testing::Iota;
using testing::Noise;
using testing::Server;
using testing::UniqueUrl;

Tree State(int seed = 0) {
  return Tree::Dict({{"params", Tree::Dict({{"w", Iota({64, 33})}, {"noise", Noise({1000 + seed})}})},
                     {"step", Tree::Scalar(int64_t{seed})}});
}

class ObjectCheckpoint : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    testing::ClearFaults(GetParam());
    Server(GetParam());  // started, and the environment pointed at it
    root_ = UniqueUrl(GetParam());
    fs_ = FileSystem::Default();
  }
  std::filesystem::path root_;
  std::shared_ptr<FileSystem> fs_;
};

TEST_P(ObjectCheckpoint, SaveAndRestoreByUrl) {
  // Every layout: OCDBT or one zarr directory per parameter, zarr v2 or zarr3.
  for (const auto& [ocdbt, zarr3] : {std::pair{true, false}, std::pair{false, false}, std::pair{true, true}}) {
    PyTreeCheckpointHandlerOptions layout;
    layout.use_ocdbt = ocdbt;
    layout.use_zarr3 = zarr3;
    Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>(layout));
    const auto dir = root_ / (std::string(ocdbt ? "ocdbt" : "zarr") + (zarr3 ? "3" : "2"));
    ckptr.save(dir, args::StandardSave{State()});
    EXPECT_EQ(ckptr.restore(dir), State());
    EXPECT_TRUE(fs_->Exists(dir / "commit_success.txt"));
    EXPECT_TRUE(fs_->Exists(dir / "_CHECKPOINT_METADATA"));
    EXPECT_FALSE(fs_->Exists(dir.string() + ".orbax-checkpoint-tmp"));
    EXPECT_TRUE(ckptr.metadata(dir).item_metadata.is_dict());
    EXPECT_THROW(ckptr.save(dir, args::StandardSave{State()}), AlreadyExistsError);
    ckptr.save(dir, args::StandardSave{State(1)}, {.force = true});
    EXPECT_EQ(ckptr.restore(dir), State(1));
  }
}

TEST_P(ObjectCheckpoint, AStepWithoutItsCommitFileIsNotACheckpoint) {
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>());
  const auto dir = root_ / "1";
  ckptr.save(dir, args::StandardSave{State()});
  EXPECT_EQ(checkpoint::ClassifyPath(*fs_, dir), checkpoint::PathKind::kStep);
  fs_->RemoveFile(dir / "commit_success.txt");
  EXPECT_THROW(ckptr.restore(dir), InvalidArgumentError);
  EXPECT_EQ(checkpoint::ClassifyPath(*fs_, dir), checkpoint::PathKind::kIncomplete);  // what `cairn` reports
  EXPECT_THROW(ckptr.restore(root_ / "2"), NotFoundError);
}

TEST_P(ObjectCheckpoint, AtomicRenameIsRefusedWhereItCannotBe) {
  CheckpointerOptions options;
  options.atomicity_options.mode = AtomicityMode::kAtomicRename;
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>(), options);
  EXPECT_THROW(ckptr.save(root_ / "1", args::StandardSave{State()}), InvalidArgumentError);
}

TEST_P(ObjectCheckpoint, AsyncSave) {
  StandardCheckpointer ckptr;
  ckptr.save(root_ / "1", State());
  ckptr.wait_until_finished();
  EXPECT_EQ(ckptr.restore(root_ / "1"), State());
}

TEST_P(ObjectCheckpoint, ManagerKeepsCommittedStepsAndCleansUnfinishedOnes) {
  // An unfinished save left by a crash: a step directory without its commit file.
  fs_->CreateDirs(root_ / "7");
  fs_->WriteFile(root_ / "7" / "_CHECKPOINT_METADATA", "{}");
  CheckpointManagerOptions options;
  options.max_to_keep = 2;
  options.cleanup_tmp_directories = true;
  {
    CheckpointManager mngr(root_, options);
    EXPECT_TRUE(mngr.all_steps().empty());
    EXPECT_FALSE(fs_->Exists(root_ / "7")) << "the unfinished step was not cleaned up";
    for (int64_t step = 10; step < 14; ++step) {
      EXPECT_TRUE(mngr.save(step, args::StandardSave{State(static_cast<int>(step))}, {.metrics = {{"loss", 1.0}}}));
    }
    mngr.wait_until_finished();
    EXPECT_EQ(mngr.all_steps(), (std::vector<int64_t>{12, 13}));
    EXPECT_EQ(mngr.restore(13), State(13));
  }
  std::vector<std::string> left = fs_->ListDir(root_);
  EXPECT_EQ(left, (std::vector<std::string>{"12", "13"}));
  // A new manager (a restarted job) finds the steps.
  CheckpointManager again(root_, options);
  EXPECT_EQ(again.latest_step(), 13);
  EXPECT_EQ(again.restore(), State(13));
  EXPECT_EQ(again.metrics(12)->at("loss"), 1.0);
}

INSTANTIATE_TEST_SUITE_P(Servers, ObjectCheckpoint, ::testing::Values("s3", "gcs"));

}  // namespace
}  // namespace cairn
