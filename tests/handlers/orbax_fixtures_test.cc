// Every checkpoint Orbax wrote in ../shared/fixtures/orbax is a test: the intact and non-critically altered
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
    if (variant == "checkpoint_metadata_present") EXPECT_EQ(m.custom_metadata["custom"], "meta");
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
