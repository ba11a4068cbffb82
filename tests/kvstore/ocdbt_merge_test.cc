// Merging per-process databases into a root database, as Orbax's finalize does.
#include <gtest/gtest.h>

#include <map>

#include "cairn/error.h"
#include "kvstore/ocdbt/ocdbt.h"
#include "kvstore/ocdbt/reader.h"
#include "ocdbt_test_util.h"

namespace cairn::kvstore {
namespace {

using testing::RandomBytes;

std::map<std::string, std::string> WriteChild(std::shared_ptr<FileSystem> fs,
                                              const std::string& dir, int process) {
  std::map<std::string, std::string> data;
  auto writer = NewOcdbtWriter(fs, dir);
  if (process == 0) {
    data["a/.zarray"] = R"({"zarr_format":2})";
    data["b.c/.zarray"] = R"({"zarr_format":2})";
  }
  for (int i = 0; i < 4; ++i) {
    std::string p = std::to_string(process * 4 + i);
    data["a/" + p] = RandomBytes(300000 + i, static_cast<uint32_t>(process * 10 + i));  // out of line
    data["b.c/" + p] = "small chunk " + p;                                               // inline
  }
  for (const auto& [k, v] : data) writer->Write(k, v);
  writer->Flush();
  return data;
}

uint64_t TotalSize(FileSystem& fs, const std::filesystem::path& dir) {
  uint64_t total = 0;
  for (const auto& name : fs.ListDir(dir)) total += fs.Stat(dir / name)->size;
  return total;
}

TEST(OcdbtMerge, TwoProcessesMergeIntoRoot) {
  auto fs = NewInMemoryFileSystem();
  auto data = WriteChild(fs, "/ckpt/ocdbt.process_0", 0);
  auto data1 = WriteChild(fs, "/ckpt/ocdbt.process_1", 1);
  data.insert(data1.begin(), data1.end());

  MergeOcdbtDatabases(fs, "/ckpt", {"ocdbt.process_0", "ocdbt.process_1"});

  OcdbtReader root(fs, "/ckpt");
  std::vector<std::string> keys;
  for (const auto& [k, v] : data) keys.push_back(k);
  EXPECT_EQ(root.ListKeys(), keys);
  for (const auto& [k, v] : data) EXPECT_TRUE(root.Read(k) == v) << k;
  EXPECT_EQ(root.latest_version()->stats.num_keys, data.size());

  // Values were referenced, not copied: the root's data is just one small leaf.
  EXPECT_EQ(fs->ListDir("/ckpt/d").size(), 1u);
  EXPECT_LT(TotalSize(*fs, "/ckpt/d"), 4096u);
  EXPECT_GT(TotalSize(*fs, "/ckpt/ocdbt.process_1/d"), 1000000u);

  // Out-of-line references point into the children through base paths, as TensorStore's merge writes them.
  std::map<std::string, std::string> base_paths;
  root.ForEach("a/", [&](const std::string& key, const ocdbt::LeafEntry& e) {
    if (auto* ref = std::get_if<ocdbt::IndirectRef>(&e.value)) {
      base_paths[key] = ref->file.base_path;
      EXPECT_TRUE(ref->file.relative_path.starts_with("d/")) << ref->file.relative_path;
    }
  });
  EXPECT_EQ(base_paths["a/0"], "ocdbt.process_0/");
  EXPECT_EQ(base_paths["a/7"], "ocdbt.process_1/");
  EXPECT_EQ(base_paths.size(), 8u);
}

TEST(OcdbtMerge, MergedRootWithSmallNodesHasInteriorNodes) {
  auto fs = NewInMemoryFileSystem();
  std::map<std::string, std::string> data;
  for (int p = 0; p < 3; ++p) {
    auto writer = NewOcdbtWriter(fs, "/ckpt/ocdbt.process_" + std::to_string(p));
    for (int i = 0; i < 500; ++i) {
      std::string key = "param" + std::to_string(i % 7) + "/" + std::to_string(p * 1000 + i);
      std::string value = i % 2 ? RandomBytes(1500, static_cast<uint32_t>(p * 1000 + i)) : key;
      writer->Write(key, value);
      data[key] = value;
    }
    writer->Flush();
  }
  OcdbtWriterOptions options;
  options.max_decoded_node_bytes = 4096;
  MergeOcdbtDatabases(fs, "/ckpt", {"ocdbt.process_0", "ocdbt.process_1/", "ocdbt.process_2"}, options);
  OcdbtReader root(fs, "/ckpt");
  EXPECT_GE(root.latest_version()->root_height, 1);
  EXPECT_EQ(root.ListKeys().size(), data.size());
  for (const auto& [k, v] : data) EXPECT_TRUE(root.Read(k) == v) << k;
  EXPECT_EQ(root.ListKeys("param3/").size(), 3u * 71);
}

TEST(OcdbtMerge, DuplicateKeyIsAnError) {
  auto fs = NewInMemoryFileSystem();
  for (int p = 0; p < 2; ++p) {
    auto writer = NewOcdbtWriter(fs, "/ckpt/ocdbt.process_" + std::to_string(p));
    writer->Write("shared/key", "v");
    writer->Write("own/" + std::to_string(p), "v");
    writer->Flush();
  }
  try {
    MergeOcdbtDatabases(fs, "/ckpt", {"ocdbt.process_0", "ocdbt.process_1"});
    FAIL() << "merged databases with a shared key";
  } catch (const InvalidArgumentError& e) {
    EXPECT_NE(std::string(e.what()).find("shared/key"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs->Exists("/ckpt/manifest.ocdbt"));
}

TEST(OcdbtMerge, RejectsBadChildrenAndExistingRoot) {
  auto fs = NewInMemoryFileSystem();
  EXPECT_THROW(MergeOcdbtDatabases(fs, "/ckpt", {"../elsewhere"}), InvalidArgumentError);
  EXPECT_THROW(MergeOcdbtDatabases(fs, "/ckpt", {"/abs"}), InvalidArgumentError);
  EXPECT_THROW(MergeOcdbtDatabases(fs, "/ckpt", {"ocdbt.process_0"}), NotFoundError);  // no such child
  MergeOcdbtDatabases(fs, "/ckpt", {});  // no children: an empty root
  EXPECT_TRUE(OpenOcdbtForRead(fs, "/ckpt")->ListKeys().empty());
  EXPECT_THROW(MergeOcdbtDatabases(fs, "/ckpt", {}), AlreadyExistsError);
}

TEST(OcdbtMerge, MergedFixtureChildReadsLikeFixtureRoot) {
  // Merge the fixture's own per-process database (copied into memory) and compare with TensorStore's merged root.
  auto disk = FileSystem::Default();
  const std::filesystem::path fixture = std::filesystem::path(CAIRN_FIXTURES_DIR) /
                                        "v0_checkpoints/direct_checkpoint/checkpoint_metadata_present/"
                                        "pytree_checkpointable_has_metadata";
  auto fs = NewInMemoryFileSystem();
  std::vector<std::filesystem::path> files;
  testing::ListFilesRecursive(*disk, fixture / "ocdbt.process_0", files);
  for (const auto& file : files) {
    auto target = "/ckpt" / std::filesystem::relative(file, fixture);
    fs->CreateDirs(target.parent_path());
    fs->WriteFile(target, disk->ReadFile(file));
  }
  MergeOcdbtDatabases(fs, "/ckpt", {"ocdbt.process_0"});
  OcdbtReader ours(fs, "/ckpt");
  OcdbtReader theirs(disk, fixture);
  EXPECT_EQ(ours.ListKeys(), theirs.ListKeys());
  for (const auto& key : theirs.ListKeys()) EXPECT_EQ(ours.Read(key), theirs.Read(key)) << key;
}

}  // namespace
}  // namespace cairn::kvstore
