// Every checkpoint Orbax wrote in tests/fixtures/orbax is a test: the intact and non-critically altered
// ones restore exactly, the critically altered ones fail with an error naming what is missing.
#include <gtest/gtest.h>

#include "cairn/cairn.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;

Tree Expected() {
  return Tree::Dict({{"a", Array::FromVector<int32_t>({8}, {0, 1, 2, 3, 4, 5, 6, 7})},
                     {"b", Tree::Dict({{"c", Array::FromVector<int32_t>({3}, {1, 2, 3})}})}});
}

Tree ExpectedSpecs() {
  return Tree::Dict({{"a", ArraySpec{DType::kInt32, {8}}}, {"b", Tree::Dict({{"c", ArraySpec{DType::kInt32, {3}}}})}});
}

// (variant, case directory) for every case under `<version>/<kind>/`.
std::vector<std::pair<std::string, fs::path>> Cases(const std::string& version, const std::string& kind) {
  std::vector<std::pair<std::string, fs::path>> cases;
  for (const auto& variant : fs::directory_iterator(cairn::testing::FixturesDir() / version / kind)) {
    for (const auto& c : fs::directory_iterator(variant.path())) {
      cases.emplace_back(variant.path().filename().string(), c.path());
    }
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

void ExpectFailureNaming(const std::function<void()>& fn, const fs::path& dir) {
  const std::string name = dir.filename().string();
  const std::string missing = name.find("manifest.ocdbt") != std::string::npos ? "manifest.ocdbt" : "/d/";
  try {
    fn();
    ADD_FAILURE() << dir << ": restore succeeded although " << missing << " is missing";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << dir << ": " << e.what();
  }
}

TEST(OrbaxFixtures, DirectCheckpointsThroughStandardCheckpointHandler) {
  auto cases = Cases("v0_checkpoints", "direct_checkpoint");
  ASSERT_GE(cases.size(), 14u);
  for (const auto& [variant, dir] : cases) {
    SCOPED_TRACE(dir.string());
    Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>());
    if (variant == "critical_metadata_alterations") {
      ExpectFailureNaming([&] { ckptr.restore(dir); }, dir);
      continue;
    }
    EXPECT_EQ(ckptr.restore(dir), Expected());
    EXPECT_EQ(ckptr.restore(dir, args::StandardRestore{ExpectedSpecs()}), Expected());
    StepMetadata m = ckptr.metadata(dir);
    EXPECT_EQ(m.item_metadata, ExpectedSpecs());
    if (variant == "checkpoint_metadata_present") {
      EXPECT_EQ(m.custom_metadata["custom"], "meta");
    }
  }
}

TEST(OrbaxFixtures, CompositeCheckpointsThroughCompositeCheckpointHandler) {
  auto cases = Cases("v0_checkpoints", "composite_checkpoint");
  auto v1 = Cases("v1_checkpoints", "composite_checkpoint");
  cases.insert(cases.end(), v1.begin(), v1.end());
  ASSERT_GE(cases.size(), 15u);
  for (const auto& [variant, dir] : cases) {
    SCOPED_TRACE(dir.string());
    Checkpointer ckptr(std::make_unique<CompositeCheckpointHandler>());
    args::Composite request({{"state", args::Item(args::StandardRestore{})},
                             {"metadata", args::Item(args::JsonRestore{})}});
    if (variant == "critical_metadata_alterations") {
      ExpectFailureNaming([&] { ckptr.restore(dir, request); }, dir);
      continue;
    }
    Tree restored = ckptr.restore(dir, request);
    EXPECT_EQ(restored["state"], Expected());
    EXPECT_EQ(restored["metadata"]["metadata"].string(), "json_data");
    // With a target, and with no args at all (handlers taken from _CHECKPOINT_METADATA where it names them).
    Tree targeted = ckptr.restore(dir, args::Composite({{"state", args::Item(args::StandardRestore{ExpectedSpecs()})}}));
    EXPECT_EQ(targeted["state"], Expected());
    StepMetadata m = ckptr.metadata(dir);
    if (variant == "checkpoint_metadata_present") {
      EXPECT_EQ(m.custom_metadata["custom"], "meta");
      EXPECT_EQ(m.item_metadata["state"], ExpectedSpecs());
      EXPECT_EQ(ckptr.restore(dir)["state"], Expected());
    }
  }
}

}  // namespace
}  // namespace cairn

#include <regex>

#include "kvstore/ocdbt/ocdbt.h"

namespace cairn {
namespace {

// Relative paths of every file under `root`, with data-file ids replaced by "*".
std::set<std::string> FileSet(const fs::path& root) {
  std::set<std::string> out;
  static const std::regex kDataFile("d/[0-9a-f]{32}$");
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    out.insert(std::regex_replace(fs::relative(entry.path(), root).string(), kDataFile, "d/*"));
  }
  return out;
}

std::string ReadFile(const fs::path& path) { return FileSystem::Default()->ReadFile(path); }

void ExpectSameItemAsOrbax(const fs::path& ours, const fs::path& orbax) {
  for (const char* file : {"_METADATA", "_sharding", "array_metadatas/process_0"}) {
    EXPECT_EQ(ReadFile(ours / file), ReadFile(orbax / file)) << file;
  }
  auto our_db = kvstore::OpenOcdbtForRead(FileSystem::Default(), ours);
  auto orbax_db = kvstore::OpenOcdbtForRead(FileSystem::Default(), orbax);
  EXPECT_EQ(our_db->ListKeys(), orbax_db->ListKeys());
  for (const auto& key : orbax_db->ListKeys()) {
    if (key.ends_with(".zarray") || key.ends_with("zarr.json")) {
      EXPECT_EQ(*our_db->Read(key), *orbax_db->Read(key)) << key;
    }
  }
}

TEST(OrbaxFixtures, CairnWritesTheSameFilesAsOrbax) {
  const fs::path orbax = cairn::testing::FixturesDir() /
                         "v0_checkpoints/direct_checkpoint/checkpoint_metadata_present/pytree_checkpointable_has_metadata";
  cairn::testing::TempDir dir;
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>());
  ckptr.save(dir / "ckpt", args::StandardSave{Expected()}, {.custom_metadata = {{"custom", "meta"}}});

  std::set<std::string> expected = FileSet(orbax);
  expected.insert("cairn_checksums/process_0");  // cairn's CRC-32Cs, in a directory Orbax never reads
  expected.insert("cairn_checkpoint_metadata.crc32c");  // and _CHECKPOINT_METADATA's, in a file Orbax ignores
  EXPECT_EQ(FileSet(dir / "ckpt"), expected);
  ExpectSameItemAsOrbax(dir / "ckpt", orbax);

  // _CHECKPOINT_METADATA: the same keys in the same order, the same handler and custom metadata.
  auto ours = nlohmann::ordered_json::parse(ReadFile(dir / "ckpt/_CHECKPOINT_METADATA"));
  auto theirs = nlohmann::ordered_json::parse(ReadFile(orbax / "_CHECKPOINT_METADATA"));
  std::vector<std::string> our_keys, their_keys;
  for (const auto& [key, value] : ours.items()) our_keys.push_back(key);
  for (const auto& [key, value] : theirs.items()) their_keys.push_back(key);
  EXPECT_EQ(our_keys, their_keys);
  EXPECT_EQ(ours["item_handlers"], theirs["item_handlers"]);
  EXPECT_EQ(ours["custom_metadata"], theirs["custom_metadata"]);
}

TEST(OrbaxFixtures, CairnWritesTheSameZarr3ItemAsOrbax) {
  const fs::path orbax = cairn::testing::FixturesDir() /
                         "v1_checkpoints/composite_checkpoint/checkpoint_metadata_present/"
                         "pytree_checkpointable_has_metadata/state";
  cairn::testing::TempDir dir;
  PyTreeCheckpointHandlerOptions options;
  options.use_zarr3 = true;
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(options));
  ckptr.save(dir / "ckpt", args::PyTreeSave{Expected()});
  ExpectSameItemAsOrbax(dir / "ckpt", orbax);
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

Array Steps(Shape shape, int64_t step) {
  std::vector<int64_t> values(static_cast<size_t>(NumElements(shape)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int64_t>(i) * step;
  return Array::FromVector<int64_t>(std::move(shape), values);
}

// Both legacy layouts restore their whole tree: zarr directories for `a`/`b` (aggregate_some) and the msgpack
// `checkpoint` file for the rest.
TEST(OrbaxFixtures, LegacyZarrV2AndMsgpackAggregates) {
  const Tree expected = Tree::Dict({{"a", Steps({8}, 1)},
                                    {"b", Steps({16}, 2)},
                                    {"c", Tree::Dict({{"a", Steps({2, 4}, 3)}, {"e", Steps({4, 4}, 4)}})}});
  for (const char* name : {"aggregate_some.checkpoint", "aggregate_all.checkpoint"}) {
    SCOPED_TRACE(name);
    const fs::path dir = cairn::testing::FixturesDir() / "zarr_v2" / name;
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>());
    EXPECT_EQ(ckptr.restore(dir), expected);
    // With a target: cast and, non-strictly, padded, for zarr-held and msgpack-held values alike.
    Tree target = Tree::Dict({{"a", ArraySpec{DType::kInt32, {10}}},
                              {"b", ArraySpec{DType::kFloat64, {16}}},
                              {"c", Tree::Dict({{"a", ArraySpec{DType::kInt64, {2, 2}}},
                                                {"e", ArraySpec{DType::kInt64, {4, 4}}}})}});
    Tree restored = ckptr.restore(dir, args::PyTreeRestore{target, {}, false, /*strict=*/false});
    EXPECT_EQ(restored["a"].array(), Array::FromVector<int32_t>({10}, {0, 1, 2, 3, 4, 5, 6, 7, 0, 0}));
    EXPECT_EQ(restored["b"].array(), Steps({16}, 2).Cast(DType::kFloat64));
    EXPECT_EQ(restored["c"]["a"].array(), Array::FromVector<int64_t>({2, 2}, {0, 3, 12, 15}));
    EXPECT_EQ(ckptr.metadata(dir).item_metadata["c"]["e"].spec(), (ArraySpec{DType::kInt64, {4, 4}}));
  }
}

}  // namespace
}  // namespace cairn
