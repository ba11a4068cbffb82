// cairn's metadata files, byte for byte against what Orbax wrote in the fixtures.
#include <gtest/gtest.h>

#include "cairn/error.h"
#include "metadata/array_metadata.h"
#include "metadata/checkpoint_metadata.h"
#include "metadata/python_json.h"
#include "metadata/tree_metadata.h"
#include "test_util.h"

namespace cairn::metadata {
namespace {

std::filesystem::path DirectFixture() {
  return cairn::testing::FixturesDir() /
         "v0_checkpoints/direct_checkpoint/checkpoint_metadata_present/pytree_checkpointable_has_metadata";
}

std::string Read(const std::filesystem::path& path) { return FileSystem::Default()->ReadFile(path); }

TEST(TreeMetadata, EncodesExactlyAsOrbax) {
  TreeMetadata m;
  m.entries.push_back({{{"a", KeyType::kDict}}, kJaxArray, false, Shape{8}});
  m.entries.push_back({{{"b", KeyType::kDict}, {"c", KeyType::kDict}}, kJaxArray, false, Shape{3}});
  m.use_ocdbt = true;
  m.use_zarr3 = false;
  EXPECT_EQ(EncodeTreeMetadata(m), Read(DirectFixture() / "_METADATA"));
}

TEST(TreeMetadata, DecodesFixturesAndRoundTrips) {
  std::string text = Read(DirectFixture() / "_METADATA");
  TreeMetadata m = DecodeTreeMetadata(text, "fixture");
  ASSERT_EQ(m.entries.size(), 2u);
  EXPECT_EQ(ParamName(m.entries[1].path), "b.c");
  EXPECT_EQ(m.entries[1].write_shape, (Shape{3}));
  EXPECT_EQ(m.use_ocdbt, true);
  EXPECT_EQ(EncodeTreeMetadata(m), text);

  TreeMetadata legacy = DecodeTreeMetadata(Read(cairn::testing::FixturesDir() / "zarr_v2/aggregate_some.checkpoint/_METADATA"), "legacy");
  ASSERT_EQ(legacy.entries.size(), 4u);
  EXPECT_EQ(legacy.entries[2].value_type, kNumpyArray);
  EXPECT_TRUE(legacy.entries[2].skip_deserialize);
  EXPECT_FALSE(legacy.use_ocdbt.has_value());
}

TEST(TreeMetadata, EmptyNodesAndSequences) {
  Tree t = Tree::Dict({{"l", Tree::List({Tree::None(), Tree::Dict({})})}, {"t", Tree::Tuple({})}});
  TreeMetadata m;
  for (const auto& [path, leaf] : t.Flatten(true)) {
    m.entries.push_back({path, leaf.is_none() ? kNone : leaf.is_dict() ? kEmptyDict : kEmptyTuple, true, std::nullopt});
  }
  std::string text = EncodeTreeMetadata(m);
  EXPECT_NE(text.find(R"x("('l', '0')": {"key_metadata": [{"key": "l", "key_type": 2}, {"key": "0", "key_type": 1}])x"),
            std::string::npos)
      << text;
  Tree back = TreeFromMetadata(DecodeTreeMetadata(text, "t"), [](const auto&) { return Tree::None(); });
  EXPECT_EQ(back, t);
}

TEST(TreeMetadata, MalformedIsCorruption) {
  EXPECT_THROW(DecodeTreeMetadata("{", "m"), CorruptionError);
  EXPECT_THROW(DecodeTreeMetadata("[]", "m"), CorruptionError);
  EXPECT_THROW(DecodeTreeMetadata(R"({"tree_metadata": {"x": {"key_metadata": 3}}})", "m"), CorruptionError);
  EXPECT_THROW(DecodeTreeMetadata(R"({"tree_metadata": {"x": {"key_metadata": [{"key": "a", "key_type": 7}]}}})", "m"),
               CorruptionError);
}

TEST(PythonRepr, MatchesPython) {
  EXPECT_EQ(PythonStringRepr("a"), "'a'");
  EXPECT_EQ(PythonStringRepr("it's"), "\"it's\"");
  EXPECT_EQ(PythonStringRepr("both'\""), "'both\\'\"'");
  EXPECT_EQ(PythonStringRepr("tab\there\n"), "'tab\\there\\n'");
  EXPECT_EQ(PythonStringRepr(std::string("\x01", 1)), "'\\x01'");
  EXPECT_EQ(PythonKeyTupleRepr({{"a", KeyType::kDict}}), "('a',)");
  EXPECT_EQ(PythonKeyTupleRepr({{"b", KeyType::kDict}, {"0", KeyType::kSequence}}), "('b', '0')");
  EXPECT_EQ(PythonJsonDumps(nlohmann::ordered_json::parse(R"({"z": [1, 2.5, "é"], "a": {}})")),
            R"({"z": [1, 2.5, "\u00e9"], "a": {}})");
}

TEST(ArrayMetadata, ShardingAndArrayMetadatasMatchFixtures) {
  EXPECT_EQ(UrlSafeBase64("a"), "YQ==");
  EXPECT_EQ(UrlSafeBase64("b.c"), "Yi5j");
  EXPECT_EQ(UrlSafeBase64("\xfb\xff"), "-_8=");
  EXPECT_EQ(EncodeSingleDeviceSharding({"a", "b.c"}), Read(DirectFixture() / "_sharding"));
  EXPECT_EQ(EncodeArrayMetadatas({{"a", {8}, {8}}, {"b.c", {3}, {3}}}),
            Read(DirectFixture() / "array_metadatas/process_0"));
}

TEST(CheckpointMetadata, EncodesExactlyAsOrbax) {
  const std::string orbax = Read(DirectFixture() / "_CHECKPOINT_METADATA");
  const auto written = nlohmann::json::parse(orbax);  // the timestamps of the run that wrote the fixture
  StepMetadata m;
  m.item_handlers = "orbax.checkpoint._src.handlers.standard_checkpoint_handler.StandardCheckpointHandler";
  m.init_timestamp_nsecs = written.at("init_timestamp_nsecs").get<int64_t>();
  m.commit_timestamp_nsecs = written.at("commit_timestamp_nsecs").get<int64_t>();
  m.custom_metadata = {{"custom", "meta"}};
  EXPECT_EQ(EncodeCheckpointMetadata(m), orbax);
}

TEST(CheckpointMetadata, DecodingIsLenient) {
  StepMetadata m = DecodeCheckpointMetadata(R"({"metrics": {"loss": 1.5}, "unknown_key": 3})", "x");
  EXPECT_TRUE(m.item_handlers.is_null());
  EXPECT_EQ(m.metrics["loss"], 1.5);
  EXPECT_FALSE(m.init_timestamp_nsecs);
  EXPECT_EQ(m.custom_metadata["unknown_key"], 3);
  EXPECT_THROW(DecodeCheckpointMetadata("[1]", "x"), CorruptionError);
  EXPECT_THROW(DecodeCheckpointMetadata(R"({"init_timestamp_nsecs": "soon"})", "x"), CorruptionError);
  // Every fixture variant with a metadata field removed still decodes.
  auto root = cairn::testing::FixturesDir() / "v0_checkpoints/direct_checkpoint/non_critical_metadata_alterations";
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    auto file = entry.path() / kCheckpointMetadataFile;
    if (std::filesystem::exists(file)) {
      EXPECT_NO_THROW(DecodeCheckpointMetadata(Read(file), file.string())) << file;
    }
  }
}

}  // namespace
}  // namespace cairn::metadata
