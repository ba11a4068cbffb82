// DescribeCheckpoint (`cairn info`) reads an item's metadata files as a restore does: checked against the CRC-32C
// cairn recorded when it saved them, so a damaged file is a CorruptionError, not a description of wrong contents.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "cairn/cairn.h"
#include "cairn/inspect.h"
#include "test_util.h"

namespace cairn {
namespace {

using cairn::testing::TempDir;

// One extra space: the file still parses and means the same, but its bytes are not the ones saved.
void Respace(const std::filesystem::path& file) {
  std::stringstream text;
  text << std::ifstream(file).rdbuf();
  std::string s = text.str();
  const auto at = s.find(": ");
  ASSERT_NE(at, std::string::npos) << file;
  s.insert(at + 1, " ");
  std::ofstream(file, std::ios::trunc) << s;
}

void SaveStep(const std::filesystem::path& step) {
  Checkpointer ckptr(std::make_unique<CompositeCheckpointHandler>());
  args::Composite save;
  save.add("state", args::PyTreeSave(Tree::Dict({{"a", Tree(Array::FromScalar(1.5))}, {"b", Tree("text")}})))
      .add("extra", args::JsonSave{{{"epoch", 3}, {"lr", 0.5}}});
  ckptr.save(step, save);
  EXPECT_NO_THROW(DescribeCheckpoint(step));
}

TEST(DescribeCheckpoint, ChecksTreeMetadataAgainstItsCrc) {
  TempDir dir;
  SaveStep(dir / "1");
  Respace(dir / "1/state/_METADATA");
  try {
    DescribeCheckpoint(dir / "1");
    FAIL() << "a _METADATA that fails its CRC-32C was described";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("_METADATA"), std::string::npos) << e.what();
  }
}

TEST(DescribeCheckpoint, ChecksJsonItemsAgainstTheirCrc) {
  TempDir dir;
  SaveStep(dir / "1");
  Respace(dir / "1/extra/metadata");
  EXPECT_THROW(DescribeCheckpoint(dir / "1"), CorruptionError);
}

TEST(DescribeCheckpoint, AMetadataFileRecordedButLostIsCorrupt) {
  TempDir dir;
  SaveStep(dir / "1");
  std::filesystem::remove(dir / "1/state/_sharding");  // recorded, then lost
  EXPECT_THROW(DescribeCheckpoint(dir / "1"), CorruptionError);
}

}  // namespace
}  // namespace cairn
