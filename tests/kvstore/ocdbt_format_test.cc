// Unit tests of the OCDBT codecs: varints, data file tables, B+tree nodes and manifests.
#include <gtest/gtest.h>

#include <limits>

#include "cairn/error.h"
#include "kvstore/ocdbt/btree_node.h"
#include "kvstore/ocdbt/codec.h"
#include "kvstore/ocdbt/data_file_table.h"
#include "kvstore/ocdbt/manifest.h"

namespace cairn::kvstore::ocdbt {
namespace {

TEST(OcdbtVarint, RoundTripsAndBounds) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{300}, uint64_t{1} << 35,
                     std::numeric_limits<uint64_t>::max()}) {
    std::string s;
    AppendVarint(s, v);
    EXPECT_EQ(s.size(), VarintLength(v));
    ByteReader r(s, "test");
    EXPECT_EQ(r.ReadVarint("v"), v);
    r.ExpectEnd();
  }
  std::string e;
  AppendVarint(e, 1024);
  EXPECT_EQ(e, "\x80\x08");  // max_inline_value_bytes as the fixtures store it
  ByteReader truncated(std::string_view("\x80\x80", 2), "test");
  EXPECT_THROW(truncated.ReadVarint("v"), CorruptionError);
  std::string overflow(9, '\xff');
  overflow += '\x02';  // bit 64
  ByteReader over(overflow, "test");
  EXPECT_THROW(over.ReadVarint("v"), CorruptionError);
  std::string eleven(10, '\x80');
  eleven += '\x00';
  ByteReader too_long(eleven, "test");
  EXPECT_THROW(too_long.ReadVarint("v"), CorruptionError);
  ByteReader bounded(std::string_view("\x05", 1), "test");
  EXPECT_THROW(bounded.ReadVarint("v", 4), CorruptionError);
  try {
    ByteReader r(std::string_view(), "/some/file at offset 3");
    r.ReadByte("height");
    FAIL();
  } catch (const CorruptionError& err) {
    EXPECT_NE(std::string(err.what()).find("/some/file"), std::string::npos);
  }
}

TEST(OcdbtDataFileTable, RoundTripWithBasePaths) {
  DataFileTableBuilder builder;
  std::vector<DataFileId> ids = {{"", "d/0123"},
                                 {"", "d/0124"},
                                 {"ocdbt.process_0/", "d/aaaa"},
                                 {"ocdbt.process_0/", "d/aaab"},
                                 {"ocdbt.process_1/", "d/aaaa"},
                                 {"ocdbt.process_10/", "d/x"},
                                 {"", ""}};
  for (const auto& id : ids) builder.Add(id);
  builder.Add(ids[0]);  // duplicates collapse
  std::string encoded;
  builder.Encode(encoded);
  ByteReader reader(encoded, "table");
  auto decoded = DecodeDataFileTable(reader, "parent/");
  reader.ExpectEnd();
  ASSERT_EQ(decoded.size(), ids.size());
  for (const auto& id : ids) {
    const DataFileId& got = decoded[builder.IndexOf(id)];
    EXPECT_EQ(got.base_path, "parent/" + id.base_path);
    EXPECT_EQ(got.relative_path, id.relative_path);
  }
}

TEST(OcdbtDataFileTable, FixtureStyleTable) {
  // The process database fixture's table: 4 files sharing "d/", no base paths.
  std::string encoded = "\x04\x02\x02\x02\x22\x20\x20\x20";
  encoded += std::string(4, '\0');
  encoded += "d/" + std::string(32, 'a') + std::string(32, 'b') + std::string(32, 'c') + std::string(32, 'd');
  ByteReader reader(encoded, "table");
  auto files = DecodeDataFileTable(reader, "");
  ASSERT_EQ(files.size(), 4u);
  EXPECT_EQ(files[3].FullPath(), "d/" + std::string(32, 'd'));
}

TEST(OcdbtDataFileTable, RejectsPrefixPastDifferentBase) {
  // Second entry claims a 3-byte shared prefix while its base path (1 byte) differs in length from the first (2).
  std::string encoded = "\x02\x03\x04\x04\x02\x01";
  encoded += "abcdwxyz";
  ByteReader reader(encoded, "table");
  EXPECT_THROW(DecodeDataFileTable(reader, ""), CorruptionError);
}

TEST(OcdbtBtreeNode, LeafAndInteriorRoundTrip) {
  for (bool zstd : {false, true}) {
    BtreeNode leaf;
    leaf.height = 0;
    leaf.leaf_entries.push_back({"abc", std::string("inline")});
    leaf.leaf_entries.push_back({"abd", IndirectRef{{"", "d/f1"}, 10, 20}});
    leaf.leaf_entries.push_back({"b", std::string()});
    leaf.leaf_entries.push_back({"b\xff", IndirectRef{{"base/", "d/f2"}, 0, 1}});
    std::string encoded = EncodeBtreeNode(leaf, Compression{zstd, 0});
    BtreeNode got = DecodeBtreeNode(encoded, "t/", 1 << 20, "leaf");
    ASSERT_EQ(got.leaf_entries.size(), 4u);
    EXPECT_EQ(got.leaf_entries[0].key, "abc");
    EXPECT_EQ(std::get<std::string>(got.leaf_entries[0].value), "inline");
    auto ref = std::get<IndirectRef>(got.leaf_entries[1].value);
    EXPECT_EQ(ref.file.base_path, "t/");
    EXPECT_EQ(ref.file.relative_path, "d/f1");
    EXPECT_EQ(ref.offset, 10u);
    EXPECT_EQ(ref.length, 20u);
    EXPECT_EQ(std::get<IndirectRef>(got.leaf_entries[3].value).file.base_path, "t/base/");
    EXPECT_EQ(got.leaf_entries[3].key, "b\xff");

    BtreeNode interior;
    interior.height = 3;
    interior.interior_entries.push_back({"", 0, IndirectRef{{"", "d/x"}, 0, 100}, {5, 100, 7}});
    interior.interior_entries.push_back({"params/x", 7, IndirectRef{{"", "d/x"}, 100, 50}, {1, 50, 0}});
    BtreeNode got_interior = DecodeBtreeNode(EncodeBtreeNode(interior, Compression{zstd, 0}), "", 1 << 20, "n");
    ASSERT_EQ(got_interior.interior_entries.size(), 2u);
    EXPECT_EQ(got_interior.height, 3);
    EXPECT_EQ(got_interior.interior_entries[1].key, "params/x");
    EXPECT_EQ(got_interior.interior_entries[1].subtree_common_prefix_length, 7u);
    EXPECT_EQ(got_interior.interior_entries[0].stats, (BtreeStats{5, 100, 7}));
    EXPECT_EQ(got_interior.interior_entries[1].child.offset, 100u);
  }
  BtreeNode unsorted;
  unsorted.leaf_entries.push_back({"b", std::string()});
  unsorted.leaf_entries.push_back({"a", std::string()});
  EXPECT_THROW(EncodeBtreeNode(unsorted, Compression{}), InvalidArgumentError);
}

TEST(OcdbtManifest, RoundTripWithVersionNodes) {
  Manifest m;
  m.config.uuid[0] = 7;
  VersionRef v;
  v.generation = 18;
  v.root_height = 2;
  v.root = IndirectRef{{"", "d/r"}, 5, 6};
  v.stats = {1, 2, 3};
  v.commit_time_ns = 123456789;
  m.versions.push_back(v);
  VersionNodeRef node;
  node.generation = 16;
  node.location = IndirectRef{{"", "d/v"}, 1, 2};
  node.num_generations = 16;
  node.commit_time = 1;
  node.height = 1;
  m.version_nodes.push_back(node);
  Manifest got = DecodeManifest(EncodeManifest(m), "manifest");
  EXPECT_TRUE(got.config == m.config);
  ASSERT_EQ(got.versions.size(), 1u);
  EXPECT_EQ(got.versions[0].generation, 18u);
  EXPECT_EQ(got.versions[0].root, v.root);
  EXPECT_EQ(got.versions[0].commit_time_ns, 123456789u);
  ASSERT_EQ(got.version_nodes.size(), 1u);
  EXPECT_EQ(got.version_nodes[0].location, node.location);

  // A numbered-kind manifest carries only the config.
  Manifest config_only;
  config_only.config.manifest_kind = ManifestKind::kNumbered;
  Manifest got_config = DecodeManifest(EncodeManifest(config_only), "manifest");
  EXPECT_EQ(got_config.config.manifest_kind, ManifestKind::kNumbered);
  EXPECT_TRUE(got_config.versions.empty());
}

}  // namespace
}  // namespace cairn::kvstore::ocdbt
