// The FileSystem seam over S3 (moto) and GCS (fake-gcs-server), run against the real servers on loopback: the
// same expectations for both drivers.
#include <gtest/gtest.h>

#include "cairn/error.h"
#include "cairn/object_store.h"
#include "core/thread_pool.h"
#include "io/objstore/object_store_file_system.h"
#include "object_store_env.h"

namespace cairn {
namespace {

using testing::NewFileSystemFor;
using testing::Server;
using testing::UniqueUrl;

class ObjectFileSystem : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    testing::ClearFaults(GetParam());
    fs_ = NewFileSystemFor(GetParam(), Server(GetParam()).Options());
    root_ = UniqueUrl(GetParam());
  }
  std::shared_ptr<FileSystem> fs_;
  std::filesystem::path root_;
};

std::string Pattern(size_t size) {
  std::string data(size, '\0');
  uint32_t x = 7;
  for (auto& c : data) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
  return data;
}

TEST_P(ObjectFileSystem, FilesDirectoriesAndListing) {
  EXPECT_FALSE(fs_->HasAtomicRename(root_));
  EXPECT_FALSE(fs_->Exists(root_));
  fs_->CreateDirs(root_ / "a" / "b");
  EXPECT_TRUE(fs_->IsDirectory(root_ / "a" / "b"));  // an empty directory exists (its marker)
  EXPECT_TRUE(fs_->ListDir(root_ / "a" / "b").empty());
  fs_->WriteFile(root_ / "a" / "f.txt", "hello");
  fs_->WriteFile(root_ / "a" / "b" / "g", "");
  EXPECT_EQ(fs_->ReadFile(root_ / "a" / "f.txt"), "hello");
  EXPECT_EQ(fs_->ReadFile(root_ / "a" / "b" / "g"), "");
  auto info = fs_->Stat(root_ / "a" / "f.txt");
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->is_directory);
  EXPECT_EQ(info->size, 5u);
  EXPECT_EQ(fs_->ListDir(root_ / "a"), (std::vector<std::string>{"b", "f.txt"}));
  EXPECT_EQ(fs_->ListDir(root_), (std::vector<std::string>{"a"}));
  EXPECT_THROW(fs_->ListDir(root_ / "nothing"), NotFoundError);
  EXPECT_THROW(fs_->OpenForRead(root_ / "a" / "missing"), NotFoundError);

  // Single files rename (copy + delete); directories do not.
  fs_->Rename(root_ / "a" / "f.txt", root_ / "a" / "h.txt");
  EXPECT_FALSE(fs_->Exists(root_ / "a" / "f.txt"));
  EXPECT_EQ(fs_->ReadFile(root_ / "a" / "h.txt"), "hello");
  EXPECT_THROW(fs_->Rename(root_ / "a" / "b", root_ / "a" / "c"), UnimplementedError);

  fs_->RemoveAll(root_ / "a");
  EXPECT_FALSE(fs_->Exists(root_ / "a"));
  // CreateDirs marks only the directory asked for; its parents existed while something was below them.
  EXPECT_FALSE(fs_->Exists(root_));
}

TEST_P(ObjectFileSystem, LargeFilesGoUpInPartsAndReadInRanges) {
  ObjectStoreOptions options = Server(GetParam()).Options();
  options.part_size = 5u << 20;  // S3's smallest part, a multiple of GCS's 256 KiB
  auto fs = NewFileSystemFor(GetParam(), options);
  const std::string data = Pattern((11u << 20) + 12345);
  {
    auto file = fs->NewWritableFile(root_ / "big");
    // Appends of odd sizes, one larger than a part (sent straight from the caller's buffer).
    file->Append(std::string_view(data).substr(0, 1000));
    file->Append(std::string_view(data).substr(1000, (6u << 20)));
    EXPECT_FALSE(fs->Exists(root_ / "big")) << "visible before Close";
    file->Append(std::string_view(data).substr(1000 + (6u << 20)));
    file->Sync();
    file->Close();
  }
  auto file = fs->OpenForRead(root_ / "big");
  ASSERT_EQ(file->Size(), data.size());
  std::string back(data.size(), '\0');
  file->ReadAt(0, data.size(), back.data());
  EXPECT_TRUE(back == data);
  std::string middle(777, '\0');
  file->ReadAt(5u << 20, middle.size(), middle.data());
  EXPECT_EQ(middle, data.substr(5u << 20, 777));
  EXPECT_THROW(file->ReadAt(data.size() - 10, 11, middle.data()), CorruptionError);
}

TEST_P(ObjectFileSystem, AFileDroppedWithoutCloseLeavesNothing) {
  ObjectStoreOptions options = Server(GetParam()).Options();
  options.part_size = 5u << 20;
  auto fs = NewFileSystemFor(GetParam(), options);
  {
    auto file = fs->NewWritableFile(root_ / "partial");
    file->Append(Pattern(6u << 20));  // one part uploaded
  }
  EXPECT_FALSE(fs->Exists(root_ / "partial"));
}

TEST_P(ObjectFileSystem, ListingPagesThroughManyEntries) {
  // More entries than one page of a listing (made 50 entries long here; 1,000 by default) in one directory, and a
  // batched delete of all of them.
  ObjectStoreOptions options = Server(GetParam()).Options();
  options.list_page_size = 50;
  fs_ = NewFileSystemFor(GetParam(), options);
  const int n = 120;
  ParallelFor(n, [&](size_t i) { fs_->WriteFile(root_ / ("f" + std::to_string(i)), "x"); });
  fs_->CreateDirs(root_ / "sub" / "deeper");
  auto names = fs_->ListDir(root_);
  EXPECT_EQ(names.size(), static_cast<size_t>(n + 1));
  const auto before = GetObjectStoreStats(*fs_)->requests;
  fs_->RemoveAll(root_);
  EXPECT_FALSE(fs_->Exists(root_));
  if (GetParam() == "s3") {
    EXPECT_LT(GetObjectStoreStats(*fs_)->requests - before, 8u) << "deletes not batched";
  }
}

TEST_P(ObjectFileSystem, ServerSideCopiesAreIndependentFiles) {
  // How delta saves share an earlier step's data files here (no hard links on an object store).
  EXPECT_FALSE(fs_->SupportsHardLinks(root_));
  EXPECT_TRUE(fs_->SupportsServerSideCopy(root_));
  EXPECT_EQ(fs_->HowFilesAreShared(root_), FileSystem::FileSharing::kServerSideCopy);
  const std::string data = Pattern(300'000);
  fs_->WriteFile(root_ / "a" / "f", data);
  const auto before = GetObjectStoreStats(*fs_)->bytes_sent;
  fs_->ShareFile(root_ / "a" / "f", root_ / "b" / "f");
  EXPECT_LT(GetObjectStoreStats(*fs_)->bytes_sent - before, 10'000u) << "the bytes went through the client";
  fs_->RemoveFile(root_ / "a" / "f");
  EXPECT_EQ(fs_->ReadFile(root_ / "b" / "f"), data);
  // Replaces what is there; a missing source is a NotFoundError.
  fs_->WriteFile(root_ / "c", "other");
  fs_->CopyFile(root_ / "b" / "f", root_ / "c");
  EXPECT_EQ(fs_->ReadFile(root_ / "c"), data);
  EXPECT_THROW(fs_->CopyFile(root_ / "missing", root_ / "d"), NotFoundError);
  EXPECT_FALSE(fs_->Exists(root_ / "d"));
  if (GetParam() == "gcs") {
    // A refused rewrite call (503) is sent again under the retry policy.
    testing::InjectFault(GetParam(), "status", 2, "rewriteTo", 503);
    fs_->CopyFile(root_ / "b" / "f", root_ / "e");
    EXPECT_EQ(testing::FaultsFired(GetParam()), 2);
    EXPECT_EQ(fs_->ReadFile(root_ / "e"), data);
  }
}

TEST(ObjectFileSystemS3, CopiesLargerThanCopyObjectTakesGoInParts) {
  // CopyObject copies at most 5 GiB; past that UploadPartCopy in ranges. Scaled down here: one copy up to 6 MiB,
  // parts of 5 MiB (S3's smallest), a 12 MiB object in three parts.
  io::objstore::S3CopyLimits limits;
  limits.max_single_copy_bytes = 6u << 20;
  limits.copy_part_bytes = 5u << 20;
  auto fs = std::make_shared<io::objstore::ObjectStoreFileSystem>(
      io::objstore::NewS3Store(Server("s3").Options(), limits));
  const std::filesystem::path root = UniqueUrl("s3");
  const std::string data = Pattern((12u << 20) + 4321);
  ObjectStoreOptions upload = Server("s3").Options();
  upload.part_size = 5u << 20;
  NewFileSystemFor("s3", upload)->WriteFile(root / "big", data);
  const auto before = fs->store().Stats().bytes_sent;
  // One part copy refused (503) and one connection dropped: each part is sent again under the retry policy.
  testing::ClearFaults("s3");
  testing::InjectFault("s3", "status", 1, "partNumber=2", 503);
  testing::InjectFault("s3", "drop", 1, "partNumber=3");
  fs->CopyFile(root / "big", root / "copy");
  EXPECT_EQ(testing::FaultsFired("s3"), 2);
  EXPECT_LT(fs->store().Stats().bytes_sent - before, 20'000u);
  fs->RemoveFile(root / "big");
  EXPECT_TRUE(fs->ReadFile(root / "copy") == data);
  // A small one is still one CopyObject.
  fs->WriteFile(root / "small", "tiny");
  fs->CopyFile(root / "small", root / "small2");
  EXPECT_EQ(fs->ReadFile(root / "small2"), "tiny");
}

INSTANTIATE_TEST_SUITE_P(Servers, ObjectFileSystem, ::testing::Values("s3", "gcs"));

}  // namespace
}  // namespace cairn
