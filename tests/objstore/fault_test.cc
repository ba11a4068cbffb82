// Object-store failures, made by the tests' proxy between cairn and the real server (tests/objstore/servers.py):
// 503 and 429 answers, dropped connections, stalls and truncated bodies are retried with backoff until the save or
// restore succeeds; a server that keeps failing makes the save fail with a clear error, commit nothing and leave
// earlier steps as they were.
#include <gtest/gtest.h>

#include "cairn/cairn.h"
#include "cairn/object_store.h"
#include "object_store_env.h"
#include "test_util.h"

namespace cairn {
namespace {

using testing::InjectFault;
using testing::Noise;
using testing::Server;
using testing::UniqueUrl;

Tree State(int seed = 0) { return Tree::Dict({{"w", Noise({3000 + seed})}, {"step", Tree::Scalar(int64_t{seed})}}); }

class ObjectStoreFaults : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    testing::ClearFaults(GetParam());
    root_ = UniqueUrl(GetParam());
  }
  void TearDown() override { testing::ClearFaults(GetParam()); }

  std::shared_ptr<FileSystem> Fs(ObjectStoreOptions options) {
    return testing::NewFileSystemFor(GetParam(), std::move(options));
  }
  std::unique_ptr<Checkpointer> Ckptr(std::shared_ptr<FileSystem> fs) {
    CheckpointerOptions options;
    options.file_system = std::move(fs);
    return std::make_unique<Checkpointer>(std::make_unique<StandardCheckpointHandler>(), options);
  }

  std::filesystem::path root_;
};

TEST_P(ObjectStoreFaults, TransientFailuresAreRetried) {
  auto fs = Fs(Server(GetParam()).Options());
  auto ckptr = Ckptr(fs);
  struct Case {
    const char* mode;
    int status;
    const char* match;
  };
  int i = 0;
  for (const Case& c : {Case{"status", 503, ""}, Case{"status", 429, ""}, Case{"status", 500, "GET"},
                        Case{"drop", 0, ""}, Case{"truncate", 0, "GET"}}) {
    SCOPED_TRACE(std::string(c.mode) + " " + std::to_string(c.status) + " " + c.match);
    const auto dir = root_ / std::to_string(i++);
    const auto retries_before = GetObjectStoreStats(*fs)->retries;
    testing::ClearFaults(GetParam());
    InjectFault(GetParam(), c.mode, 3, c.match, c.status);
    ckptr->save(dir, args::StandardSave{State(i)});
    EXPECT_EQ(ckptr->restore(dir), State(i));
    EXPECT_EQ(testing::FaultsFired(GetParam()), 3);
    // libcurl itself resends a request once when a kept-alive connection turns out dead, so not every dropped
    // connection costs one of cairn's retries.
    EXPECT_GE(GetObjectStoreStats(*fs)->retries - retries_before, c.mode == std::string("drop") ? 1u : 3u);
  }
}

TEST_P(ObjectStoreFaults, AStalledRequestTimesOutAndIsRetried) {
  ObjectStoreOptions options = Server(GetParam()).Options();
  options.request_timeout = std::chrono::milliseconds(1500);
  auto fs = Fs(options);
  auto ckptr = Ckptr(fs);
  InjectFault(GetParam(), "stall", 1, "", 0, /*seconds=*/4);
  ckptr->save(root_ / "1", args::StandardSave{State()});
  EXPECT_EQ(ckptr->restore(root_ / "1"), State());
  EXPECT_GE(GetObjectStoreStats(*fs)->retries, 1u);
}

// S3 only: a broken UploadPart is sent again whole. (A GCS resumable session is resumed at the offset a status query
// reports; fake-gcs-server answers that query by finalising the object, unlike GCS, so it cannot test this.)
TEST(ObjectStoreFaultsS3, PartUploadsAreSentAgainAfterABrokenConnection) {
  ObjectStoreOptions options = Server("s3").Options();
  options.part_size = 5u << 20;
  auto fs = testing::NewFileSystemFor("s3", options);
  const std::filesystem::path root = UniqueUrl("s3");
  std::string data((13u << 20) + 5, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + (i >> 20));
  for (const char* mode : {"drop", "truncate"}) {
    SCOPED_TRACE(mode);
    testing::ClearFaults("s3");
    InjectFault("s3", mode, 1, "partNumber=2");
    fs->WriteFile(root / mode, data);
    EXPECT_EQ(testing::FaultsFired("s3"), 1);
    EXPECT_TRUE(fs->ReadFile(root / mode) == data);
  }
}

TEST_P(ObjectStoreFaults, ASaveThatCannotFinishCommitsNothingAndHarmsNoEarlierStep) {
  ObjectStoreOptions options = Server(GetParam()).Options();
  options.retry.max_attempts = 3;
  auto fs = Fs(options);
  CheckpointManagerOptions manager_options;
  manager_options.file_system = fs;
  manager_options.enable_async_checkpointing = false;
  manager_options.cleanup_tmp_directories = true;
  {
    CheckpointManager mngr(root_, manager_options);
    mngr.save(1, args::StandardSave{State(1)});
    InjectFault(GetParam(), "status", 100000, "", 500);
    try {
      mngr.save(2, args::StandardSave{State(2)});
      ADD_FAILURE() << "the save succeeded against a failing server";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("gave up after 3 attempts"), std::string::npos) << e.what();
    }
    testing::ClearFaults(GetParam());
  }
  EXPECT_FALSE(fs->Exists(root_ / "2" / "commit_success.txt"));
  CheckpointManager again(root_, manager_options);
  EXPECT_EQ(again.all_steps(), (std::vector<int64_t>{1}));
  EXPECT_EQ(again.restore(1), State(1));
  EXPECT_FALSE(fs->Exists(root_ / "2")) << "the unfinished step was not cleaned up on restart";
}

TEST_P(ObjectStoreFaults, AForceSaveThatFailsLeavesNoHalfCheckpoint) {
  // Without rename, force removes the old checkpoint (its commit file first) before writing the new one in place.
  // A failure half-way must leave something no reader takes for a checkpoint: never the old and new mixed.
  ObjectStoreOptions options = Server(GetParam()).Options();
  options.retry.max_attempts = 2;
  auto fs = Fs(options);
  auto ckptr = Ckptr(fs);
  const auto dir = root_ / "1";
  ckptr->save(dir, args::StandardSave{State(1)});
  InjectFault(GetParam(), "status", 100000, "manifest.ocdbt", 500);  // the new database's manifest never lands
  EXPECT_THROW(ckptr->save(dir, args::StandardSave{State(2)}, {.force = true}), IoError);
  testing::ClearFaults(GetParam());
  EXPECT_FALSE(fs->Exists(dir / "commit_success.txt"));
  try {
    ckptr->restore(dir);
    ADD_FAILURE() << "a half-written checkpoint restored";
  } catch (const NotFoundError&) {
  } catch (const InvalidArgumentError&) {
  }
  ckptr->save(dir, args::StandardSave{State(3)});  // the leftover is an unfinished save, replaced without force
  EXPECT_EQ(ckptr->restore(dir), State(3));
}

INSTANTIATE_TEST_SUITE_P(Servers, ObjectStoreFaults, ::testing::Values("s3", "gcs"));

}  // namespace
}  // namespace cairn
