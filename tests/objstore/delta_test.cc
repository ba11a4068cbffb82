// Delta saves on s3:// and gs:// (docs/format.md "Delta steps", docs/storage.md): object stores have no hard links,
// so the new step gets server-side copies of the base's data files (S3 CopyObject, GCS objects.rewrite) and its
// OCDBT tree points at byte ranges in them. Against the real servers (moto, fake-gcs-server): the step restores
// exactly, `cairn info`'s accounting counts the copied bytes as shared, and deleting the base leaves it whole.
#include <gtest/gtest.h>

#include <set>

#include "cairn/cairn.h"
#include "cairn/object_store.h"
#include "io/fault_injecting_file_system.h"
#include "object_store_env.h"
#include "test_util.h"

namespace cairn {
namespace {

using testing::Noise;
using testing::Server;
using testing::UniqueUrl;

// A frozen part (256 KiB, out of line) and a small adapter (16 KiB) that changes with `step`.
Tree State(int step) {
  Array adapter = Noise({64, 64});
  for (auto& v : adapter.mutable_data<uint32_t>()) v += static_cast<uint32_t>(step);
  return Tree::Dict({{"frozen", Noise({256, 256})}, {"adapter", adapter}, {"step", Tree::Scalar(int64_t{step})}});
}

Checkpointer MakeCheckpointer() {
  PyTreeCheckpointHandlerOptions layout;
  layout.use_compression = false;
  return Checkpointer(std::make_unique<StandardCheckpointHandler>(layout));
}

nlohmann::ordered_json DeltaInfo(const std::filesystem::path& step) {
  return DescribeCheckpoint(step)["items"][0]["delta"];
}

void ExpectVerifies(const std::filesystem::path& step) {
  VerifyReport report = VerifyCheckpoint(step);
  for (const auto& problem : report.problems) ADD_FAILURE() << problem.where << ": " << problem.message;
}

// The names of the data files of a step's per-process database.
std::set<std::string> DataFiles(FileSystem& fs, const std::filesystem::path& step) {
  const auto names = fs.ListDir(step / "ocdbt.process_0" / "d");
  return {names.begin(), names.end()};
}

class ObjectDelta : public ::testing::TestWithParam<std::string> {
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

TEST_P(ObjectDelta, SharesByServerSideCopyAndSurvivesTheBase) {
  EXPECT_EQ(fs_->HowFilesAreShared(root_), FileSystem::FileSharing::kServerSideCopy);
  Checkpointer ckptr = MakeCheckpointer();
  ckptr.save(root_ / "1", args::StandardSave{State(1)}, SaveOptions{.record_delta_hashes = true});
  ckptr.save(root_ / "2", args::StandardSave{State(2)}, SaveOptions{.delta_base = root_ / "1"});
  // Frozen weights: the base's values are referenced (shared), only the adapter's bytes are new.
  const auto delta = DeltaInfo(root_ / "2");
  EXPECT_EQ(delta["bytes_shared"].get<uint64_t>(), 256u * 256 * 4);
  EXPECT_EQ(delta["bytes_written"].get<uint64_t>(), 64u * 64 * 4);
  // The base's data file is in the new step under its own name (a copy), beside the step's new file.
  const auto base_files = DataFiles(*fs_, root_ / "1");
  const auto delta_files = DataFiles(*fs_, root_ / "2");
  size_t copied = 0;
  for (const auto& name : delta_files) copied += base_files.count(name);
  EXPECT_GT(copied, 0u);
  EXPECT_GT(delta_files.size(), copied);
  EXPECT_EQ(ckptr.restore(root_ / "1"), State(1));
  EXPECT_EQ(ckptr.restore(root_ / "2"), State(2));
  ExpectVerifies(root_ / "2");

  // A third step against the delta step: it copies the copies.
  ckptr.save(root_ / "3", args::StandardSave{State(3)}, SaveOptions{.delta_base = root_ / "2"});
  EXPECT_EQ(DeltaInfo(root_ / "3")["bytes_shared"].get<uint64_t>(), 256u * 256 * 4);

  // Each step is whole on its own: the bases go, the later steps stay.
  fs_->RemoveAll(root_ / "1");
  EXPECT_EQ(ckptr.restore(root_ / "2"), State(2));
  ExpectVerifies(root_ / "2");
  fs_->RemoveAll(root_ / "2");
  EXPECT_EQ(ckptr.restore(root_ / "3"), State(3));
  ExpectVerifies(root_ / "3");
}

TEST_P(ObjectDelta, AMissingOrUncommittedBaseIsRefusedBeforeWriting) {
  Checkpointer ckptr = MakeCheckpointer();
  EXPECT_THROW(ckptr.save(root_ / "2", args::StandardSave{State(2)}, SaveOptions{.delta_base = root_ / "1"}),
               NotFoundError);
  EXPECT_FALSE(fs_->Exists(root_ / "2"));
  ckptr.save(root_ / "1", args::StandardSave{State(1)}, SaveOptions{.record_delta_hashes = true});
  fs_->RemoveFile(root_ / "1" / "commit_success.txt");
  EXPECT_THROW(ckptr.save(root_ / "2", args::StandardSave{State(2)}, SaveOptions{.delta_base = root_ / "1"}),
               InvalidArgumentError);
  EXPECT_FALSE(fs_->Exists(root_ / "2" / "commit_success.txt"));
}

TEST_P(ObjectDelta, AFailedCopyFailsTheSaveAndLeavesNoCheckpoint) {
  Checkpointer ckptr = MakeCheckpointer();
  ckptr.save(root_ / "1", args::StandardSave{State(1)}, SaveOptions{.record_delta_hashes = true});
  auto faulty = std::make_shared<io::FaultInjectingFileSystem>(fs_);
  faulty->FailNth(0, [](io::FsOp op, const std::filesystem::path&) { return op == io::FsOp::kCopy; });
  CheckpointerOptions options;
  options.file_system = faulty;
  PyTreeCheckpointHandlerOptions layout;
  layout.use_compression = false;
  Checkpointer failing(std::make_unique<StandardCheckpointHandler>(layout), options);
  EXPECT_THROW(failing.save(root_ / "2", args::StandardSave{State(2)}, SaveOptions{.delta_base = root_ / "1"}),
               IoError);
  EXPECT_TRUE(faulty->fired());
  EXPECT_FALSE(fs_->Exists(root_ / "2" / "commit_success.txt"));
  EXPECT_THROW(ckptr.restore(root_ / "2"), Error);
  EXPECT_EQ(ckptr.restore(root_ / "1"), State(1));
}

TEST_P(ObjectDelta, ManagerSavesDeltasAndRetentionDeletesBasesFreely) {
  for (const bool async : {false, true}) {
    SCOPED_TRACE(async ? "async" : "sync");
    const auto root = root_ / (async ? "async" : "sync");
    CheckpointManagerOptions options;
    options.max_to_keep = 2;
    options.save_deltas = true;
    options.enable_async_checkpointing = async;
    CheckpointManager mngr(root, options);
    for (int step = 1; step <= 4; ++step) {
      EXPECT_TRUE(mngr.save(step, args::StandardSave{State(step)}));
    }
    mngr.wait_until_finished();
    EXPECT_EQ(mngr.all_steps(), (std::vector<int64_t>{3, 4}));
    for (int step : {3, 4}) {
      const auto delta = DeltaInfo(root / std::to_string(step) / "default");
      EXPECT_GT(delta["bytes_shared"].get<uint64_t>(), 0u) << "step " << step;
      EXPECT_EQ(mngr.restore(step), State(step));
    }
    mngr.delete_step(3);
    EXPECT_EQ(mngr.restore(4), State(4));
    ExpectVerifies(root / "4");
  }
}

INSTANTIATE_TEST_SUITE_P(Servers, ObjectDelta, ::testing::Values("s3", "gcs"));

}  // namespace
}  // namespace cairn
