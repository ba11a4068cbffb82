// Reads every OCDBT database in Orbax's golden checkpoints (written by TensorStore) and checks the decoded values.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "cairn/error.h"
#include "kvstore/ocdbt/envelope.h"
#include "kvstore/ocdbt/manifest.h"
#include "kvstore/ocdbt/ocdbt.h"
#include "kvstore/ocdbt/reader.h"
#include "ocdbt_test_util.h"

namespace cairn::kvstore {
namespace {

using testing::FindDatabases;
using testing::ZstdDecode;

const std::filesystem::path kFixtures = CAIRN_FIXTURES_DIR;

std::vector<int32_t> AsInt32(const std::string& bytes) {
  std::vector<int32_t> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::vector<std::filesystem::path> AllDatabases() {
  std::vector<std::filesystem::path> dbs;
  FindDatabases(*FileSystem::Default(), kFixtures, dbs);
  return dbs;
}

TEST(OcdbtFixtures, FoundDatabases) {
  // 28 checkpoints, each with a root and a per-process database, less the one whose root manifest was removed.
  EXPECT_GE(AllDatabases().size(), 50u);
}

TEST(OcdbtFixtures, EveryDatabaseReads) {
  auto fs = FileSystem::Default();
  int checked_v0 = 0, checked_v1 = 0;
  for (const auto& dir : AllDatabases()) {
    SCOPED_TRACE(dir.string());
    OcdbtReader reader(fs, dir);
    // Orbax's config, as the format notes describe it.
    const ocdbt::Config& config = reader.manifest().config;
    EXPECT_EQ(config.manifest_kind, ocdbt::ManifestKind::kSingle);
    EXPECT_EQ(config.max_inline_value_bytes, 1024u);
    EXPECT_EQ(config.max_decoded_node_bytes, 100000000u);
    EXPECT_EQ(config.version_tree_arity_log2, 4);
    EXPECT_TRUE(config.compression.zstd);
    EXPECT_EQ(config.compression.zstd_level, 0);

    const bool root_data_removed = Contains(dir.string(), "missing_pytree_data_dir_d") &&
                                   dir.filename() != "ocdbt.process_0";
    if (root_data_removed) {
      // The manifest is intact but the root's d/ is gone: reading must name the missing file.
      try {
        reader.ListKeys();
        ADD_FAILURE() << "listing succeeded without the data directory";
      } catch (const NotFoundError& e) {
        EXPECT_TRUE(Contains(e.what(), (dir / "d").string())) << e.what();
      }
      EXPECT_THROW(reader.Read("a/.zarray"), NotFoundError);
      continue;
    }

    std::vector<std::string> keys = reader.ListKeys();
    ASSERT_FALSE(keys.empty());
    EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
    EXPECT_EQ(reader.latest_version()->stats.num_keys, keys.size());
    for (const std::string& key : keys) {
      SCOPED_TRACE(key);
      std::optional<std::string> value = reader.Read(key);
      ASSERT_TRUE(value.has_value());
      EXPECT_EQ(reader.ValueSize(key), value->size());
      if (key.ends_with(".zarray")) {
        EXPECT_EQ(nlohmann::json::parse(*value).at("zarr_format"), 2);
      } else if (key.ends_with("zarr.json")) {
        EXPECT_EQ(nlohmann::json::parse(*value).at("zarr_format"), 3);
      }
    }
    if (reader.Read("a/.zarray")) {
      ++checked_v0;
      EXPECT_EQ(AsInt32(ZstdDecode(*reader.Read("a/0"))), (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
      EXPECT_EQ(AsInt32(ZstdDecode(*reader.Read("b.c/0"))), (std::vector<int32_t>{1, 2, 3}));
      EXPECT_EQ(reader.ListKeys("b.c/"), (std::vector<std::string>{"b.c/.zarray", "b.c/0"}));
      EXPECT_EQ(reader.ListKeys("a/"), (std::vector<std::string>{"a/.zarray", "a/0"}));
      EXPECT_EQ(*reader.ReadRange("a/.zarray", 0, 1), "{");
    } else if (reader.Read("a/zarr.json")) {
      ++checked_v1;
      EXPECT_TRUE(reader.Read("a/c/0").has_value());
      EXPECT_TRUE(reader.Read("b.c/c/0").has_value());
    }
    EXPECT_FALSE(reader.Read("a").has_value());
    EXPECT_FALSE(reader.Read("zzz").has_value());
    EXPECT_FALSE(reader.Read("").has_value());
    EXPECT_TRUE(reader.ListKeys("nonexistent/").empty());
  }
  EXPECT_GT(checked_v0, 0);
  EXPECT_GT(checked_v1, 0);
}

TEST(OcdbtFixtures, ProcessDatabaseHasFourGenerations) {
  auto dir = kFixtures / "v0_checkpoints/direct_checkpoint/checkpoint_metadata_present/"
                         "pytree_checkpointable_has_metadata";
  OcdbtReader process(FileSystem::Default(), dir / "ocdbt.process_0");
  ASSERT_EQ(process.manifest().versions.size(), 4u);
  EXPECT_EQ(process.latest_version()->generation, 4u);
  EXPECT_EQ(process.ListKeys(), (std::vector<std::string>{"a/.zarray", "a/0", "b.c/.zarray", "b.c/0"}));
  // The merged root holds the same entries as the process database.
  OcdbtReader root(FileSystem::Default(), dir);
  for (const auto& key : process.ListKeys()) EXPECT_EQ(root.Read(key), process.Read(key)) << key;
}

TEST(OcdbtFixtures, MissingRootManifestIsNotFound) {
  auto dir = kFixtures / "v0_checkpoints/direct_checkpoint/critical_metadata_alterations/"
                         "missing_pytree_data_file_manifest.ocdbt";
  try {
    OpenOcdbtForRead(FileSystem::Default(), dir);
    FAIL() << "opened a database without a manifest";
  } catch (const NotFoundError& e) {
    EXPECT_TRUE(Contains(e.what(), (dir / "manifest.ocdbt").string())) << e.what();
  }
  // Its per-process database is intact.
  EXPECT_EQ(OpenOcdbtForRead(FileSystem::Default(), dir / "ocdbt.process_0")->ListKeys().size(), 4u);
}

// What our writer puts in a manifest's config must match what TensorStore wrote for Orbax, byte for byte apart
// from the uuid.
TEST(OcdbtFixtures, WriterConfigMatchesFixtureBytes) {
  auto fs = FileSystem::Default();
  auto fixture = kFixtures / "v0_checkpoints/direct_checkpoint/checkpoint_metadata_present/"
                             "pytree_checkpointable_has_metadata/manifest.ocdbt";
  std::string fixture_body = ocdbt::DecodeEnvelope(fs->ReadFile(fixture), ocdbt::kManifestMagic, 1 << 20, "fixture");
  testing::TempDir tmp;
  auto writer = NewOcdbtWriter(fs, tmp.path() / "db");
  writer->Write("k", "v");
  writer->Flush();
  std::string ours = ocdbt::DecodeEnvelope(fs->ReadFile(tmp.path() / "db/manifest.ocdbt"), ocdbt::kManifestMagic,
                                           1 << 20, "ours");
  constexpr size_t kUuid = 16, kConfigRest = 1 + 2 + 4 + 1 + 1 + 4;  // kind, 1024, 1e8, arity, method, level
  ASSERT_GE(fixture_body.size(), kUuid + kConfigRest);
  ASSERT_GE(ours.size(), kUuid + kConfigRest);
  EXPECT_EQ(ours.substr(kUuid, kConfigRest), fixture_body.substr(kUuid, kConfigRest));
  EXPECT_NE(ours.substr(0, kUuid), fixture_body.substr(0, kUuid));
  // And the envelope header bytes: magic, then version 0 and compression 1 after the length.
  std::string raw = fs->ReadFile(tmp.path() / "db/manifest.ocdbt");
  std::string fixture_raw = fs->ReadFile(fixture);
  EXPECT_EQ(raw.substr(0, 4), fixture_raw.substr(0, 4));
  EXPECT_EQ(raw.substr(12, 2), fixture_raw.substr(12, 2));
}

}  // namespace
}  // namespace cairn::kvstore
