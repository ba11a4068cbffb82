#include "cairn/file_system.h"

#include <gtest/gtest.h>

#include "cairn/error.h"
#include "io/fault_injecting_file_system.h"
#include "io/temporary_path.h"
#include "test_util.h"

namespace cairn {
namespace {

// The same contract, checked on the POSIX and the in-memory file systems.
class FileSystemTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    fs_ = GetParam() ? NewInMemoryFileSystem() : FileSystem::Default();
    root_ = GetParam() ? std::filesystem::path("/mem") : dir_.path();
    if (GetParam()) fs_->CreateDir(root_);
  }
  testing::TempDir dir_;
  std::shared_ptr<FileSystem> fs_;
  std::filesystem::path root_;
};

TEST_P(FileSystemTest, WriteReadStat) {
  fs_->WriteFile(root_ / "f", "hello", true);
  EXPECT_EQ(fs_->ReadFile(root_ / "f"), "hello");
  auto info = fs_->Stat(root_ / "f");
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->is_directory);
  EXPECT_EQ(info->size, 5u);
  EXPECT_FALSE(fs_->Stat(root_ / "nope"));
  char buf[3];
  fs_->OpenForRead(root_ / "f")->ReadAt(1, 3, buf);
  EXPECT_EQ(std::string(buf, 3), "ell");
  EXPECT_THROW(fs_->OpenForRead(root_ / "f")->ReadAt(3, 5, buf), CorruptionError);
}

TEST_P(FileSystemTest, MissingFilesAreNotFound) {
  EXPECT_THROW(fs_->OpenForRead(root_ / "missing"), NotFoundError);
  EXPECT_THROW(fs_->ListDir(root_ / "missing"), NotFoundError);
  EXPECT_THROW(fs_->NewWritableFile(root_ / "no/dir/f"), NotFoundError);
}

TEST_P(FileSystemTest, DirectoriesListAndRemove) {
  fs_->CreateDirs(root_ / "a/b/c");
  fs_->WriteFile(root_ / "a/b/c/x", "1");
  fs_->WriteFile(root_ / "a/y", "2");
  EXPECT_EQ(fs_->ListDir(root_ / "a"), (std::vector<std::string>{"b", "y"}));
  EXPECT_THROW(fs_->CreateDir(root_ / "a"), AlreadyExistsError);
  EXPECT_THROW(fs_->RemoveEmptyDir(root_ / "a"), IoError);
  fs_->RemoveAll(root_ / "a");
  EXPECT_FALSE(fs_->Exists(root_ / "a"));
  fs_->RemoveAll(root_ / "a");  // nothing there is fine
}

TEST_P(FileSystemTest, RenameMovesTrees) {
  fs_->CreateDirs(root_ / "src/sub");
  fs_->WriteFile(root_ / "src/sub/f", "data");
  fs_->Rename(root_ / "src", root_ / "dst");
  EXPECT_FALSE(fs_->Exists(root_ / "src"));
  EXPECT_EQ(fs_->ReadFile(root_ / "dst/sub/f"), "data");
  fs_->SyncDir(root_ / "dst");
  fs_->CreateDirs(root_ / "other");
  fs_->WriteFile(root_ / "other/g", "x");
  EXPECT_THROW(fs_->Rename(root_ / "dst", root_ / "other"), IoError);  // not empty
}

INSTANTIATE_TEST_SUITE_P(PosixAndMemory, FileSystemTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "InMemory" : "Posix"; });

TEST(FaultInjectingFileSystem, FailsTheChosenCall) {
  auto base = NewInMemoryFileSystem();
  io::FaultInjectingFileSystem fs(base);
  fs.CreateDir("/x");
  fs.FailNth(1, [](io::FsOp op, const auto&) { return op == io::FsOp::kSync; }, ENOSPC);
  fs.WriteFile("/x/a", "1", true);
  try {
    fs.WriteFile("/x/b", "2", true);
    FAIL() << "expected an injected fault";
  } catch (const IoError& e) {
    EXPECT_EQ(e.error_number(), ENOSPC);
    EXPECT_NE(std::string(e.what()).find("/x/b"), std::string::npos);
  }
  EXPECT_TRUE(fs.fired());
  EXPECT_EQ(fs.matched_calls(), 2);
}

TEST(TemporaryPath, OrbaxNames) {
  EXPECT_EQ(io::TemporaryPathFor("/ckpt/7"), "/ckpt/7.orbax-checkpoint-tmp");
  EXPECT_EQ(io::TemporaryPathFor("/ckpt/7/"), "/ckpt/7.orbax-checkpoint-tmp");
  EXPECT_TRUE(io::IsTemporaryPath("/ckpt/7.orbax-checkpoint-tmp"));
  EXPECT_TRUE(io::IsTemporaryPath("/ckpt/7.orbax-checkpoint-tmp-3"));
  EXPECT_TRUE(io::IsTemporaryPath("/ckpt/7.orbax-checkpoint-tmp-1700000000123456"));
  EXPECT_FALSE(io::IsTemporaryPath("/ckpt/7"));
  EXPECT_FALSE(io::IsTemporaryPath("/ckpt/7.orbax-checkpoint-tmp-x"));
}

}  // namespace
}  // namespace cairn
