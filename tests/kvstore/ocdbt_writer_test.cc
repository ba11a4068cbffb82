// OcdbtWriter -> OcdbtReader round trips.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <thread>

#include "cairn/error.h"
#include "kvstore/ocdbt/btree_node.h"
#include "kvstore/ocdbt/ocdbt.h"
#include "kvstore/ocdbt/reader.h"
#include "kvstore/ocdbt/writer.h"
#include "ocdbt_test_util.h"

namespace cairn::kvstore {
namespace {

using testing::ListFilesRecursive;
using testing::RandomBytes;

// Writes `data` into a new database, reads it back through a fresh reader, and checks every key, every listing
// by a few prefixes, and absent keys.
std::unique_ptr<OcdbtReader> RoundTrip(std::shared_ptr<FileSystem> fs, const std::filesystem::path& dir,
                                       const std::map<std::string, std::string>& data,
                                       OcdbtWriterOptions options = {}) {
  auto writer = NewOcdbtWriter(fs, dir, options);
  for (const auto& [key, value] : data) writer->Write(key, value);
  writer->Flush();
  auto reader = std::make_unique<OcdbtReader>(fs, dir);
  std::vector<std::string> expected_keys;
  for (const auto& [key, value] : data) expected_keys.push_back(key);
  EXPECT_EQ(reader->ListKeys(), expected_keys);
  for (const auto& [key, value] : data) {
    auto got = reader->Read(key);
    EXPECT_TRUE(got.has_value()) << key;
    if (got) {
      EXPECT_TRUE(*got == value) << "value of " << key << " differs";
    }
  }
  EXPECT_EQ(reader->latest_version()->stats.num_keys, data.size());
  return reader;
}

TEST(OcdbtWriter, EmptyDatabase) {
  auto fs = NewInMemoryFileSystem();
  auto reader = RoundTrip(fs, "/db", {});
  EXPECT_TRUE(reader->latest_version()->root.IsMissing());
  EXPECT_EQ(reader->latest_version()->generation, 1u);
  EXPECT_FALSE(reader->Read("x").has_value());
  EXPECT_FALSE(fs->Exists("/db/d"));  // no data files at all
}

TEST(OcdbtWriter, InlineValues) {
  auto fs = NewInMemoryFileSystem();
  std::map<std::string, std::string> data = {
      {"a/.zarray", R"({"zarr_format":2})"}, {"a/0", "abc"}, {"b.c/.zarray", "{}"}, {"b.c/0", ""}, {"", "empty key"}};
  auto reader = RoundTrip(fs, "/db", data);
  EXPECT_EQ(reader->latest_version()->root_height, 0);
  EXPECT_EQ(reader->latest_version()->stats.num_indirect_value_bytes, 0u);
  EXPECT_EQ(reader->ListKeys("a/"), (std::vector<std::string>{"a/.zarray", "a/0"}));
  EXPECT_EQ(reader->ListKeys("b"), (std::vector<std::string>{"b.c/.zarray", "b.c/0"}));
  EXPECT_EQ(*reader->ReadRange("a/0", 1, 2), "bc");
  EXPECT_THROW(reader->ReadRange("a/0", 2, 2), InvalidArgumentError);
  EXPECT_FALSE(reader->ReadRange("a/1", 0, 0).has_value());
  // Exactly one data file, holding the one leaf.
  EXPECT_EQ(fs->ListDir("/db/d").size(), 1u);
}

TEST(OcdbtWriter, LargeValuesGoOutOfLineOnDisk) {
  testing::TempDir tmp;
  auto fs = FileSystem::Default();
  std::map<std::string, std::string> data;
  data["big/0"] = RandomBytes(5 << 20, 1);
  data["big/1"] = RandomBytes((3 << 20) + 17, 2);
  data["edge/inline"] = RandomBytes(1024, 3);   // exactly max_inline_value_bytes: inline
  data["edge/outline"] = RandomBytes(1025, 4);  // one more: out of line
  data["small"] = "x";
  auto reader = RoundTrip(fs, tmp.path() / "db", data);
  EXPECT_EQ(reader->latest_version()->stats.num_indirect_value_bytes, (5u << 20) + (3u << 20) + 17 + 1025);
  EXPECT_EQ(*reader->ReadRange("big/0", 1000, 10), data["big/0"].substr(1000, 10));
  EXPECT_EQ(reader->ValueSize("big/1"), data["big/1"].size());
  std::vector<std::string> leaf_kinds;
  reader->ForEach("edge/", [&](const std::string& key, const ocdbt::LeafEntry& e) {
    leaf_kinds.push_back(key + (std::holds_alternative<std::string>(e.value) ? ":inline" : ":outline"));
  });
  EXPECT_EQ(leaf_kinds, (std::vector<std::string>{"edge/inline:inline", "edge/outline:outline"}));
}

TEST(OcdbtWriter, DataFilesRollOverAtTargetSize) {
  auto fs = NewInMemoryFileSystem();
  OcdbtWriterOptions options;
  options.target_data_file_size = 64 << 10;
  options.write_buffer_bytes = 16 << 10;
  std::map<std::string, std::string> data;
  for (int i = 0; i < 40; ++i) data["v" + std::to_string(i)] = RandomBytes(10000 + i, static_cast<uint32_t>(i));
  RoundTrip(fs, "/db", data, options);
  std::vector<std::string> files = fs->ListDir("/db/d");
  EXPECT_GE(files.size(), 6u);  // 400 KB of values in files of at most 64 KiB
  for (const auto& name : files) {
    EXPECT_EQ(name.size(), 32u);
    EXPECT_TRUE(std::all_of(name.begin(), name.end(), [](char c) { return std::isxdigit(c) && !std::isupper(c); }));
    EXPECT_LE(fs->Stat("/db/d/" + name)->size, 64u << 10);
  }
}

std::map<std::string, std::string> ManyKeys(int n) {
  std::map<std::string, std::string> data;
  for (int i = 0; i < n; ++i) {
    std::string key = "params/layer_" + std::to_string(i % 97) + "/kernel/" + std::to_string(i);
    // Mostly inline values of ~60 bytes, so that small nodes hold few entries; every 50th is out of line.
    data[key] = (i % 50 == 0) ? RandomBytes(2000, static_cast<uint32_t>(i))
                              : "value " + std::to_string(i) + std::string(50, static_cast<char>('a' + i % 26));
  }
  return data;
}

TEST(OcdbtWriter, TenThousandKeysDefaultNodeSize) {
  auto fs = NewInMemoryFileSystem();
  auto data = ManyKeys(10000);
  auto reader = RoundTrip(fs, "/db", data);
  EXPECT_EQ(reader->latest_version()->root_height, 0);  // 100 MB nodes: everything fits one leaf
  EXPECT_EQ(reader->ListKeys("params/layer_5/").size(), 104u);
}

TEST(OcdbtWriter, TenThousandKeysSmallNodes) {
  auto fs = NewInMemoryFileSystem();
  auto data = ManyKeys(10000);
  OcdbtWriterOptions options;
  options.max_decoded_node_bytes = 4096;
  options.max_inline_value_bytes = 100;
  auto reader = RoundTrip(fs, "/db", data, options);
  EXPECT_GE(reader->latest_version()->root_height, 2);
  EXPECT_EQ(reader->ListKeys("params/layer_5/").size(), 104u);
  EXPECT_EQ(reader->ListKeys("params/layer_96/kernel/99"), (std::vector<std::string>{"params/layer_96/kernel/9990"}));
  EXPECT_TRUE(reader->ListKeys("params/layer_5/kernel/1x").empty());
  EXPECT_TRUE(reader->ListKeys("q").empty());
  EXPECT_FALSE(reader->Read("params/layer_5/kernel/6").has_value());
  EXPECT_FALSE(reader->Read("params/layer_5/").has_value());
  EXPECT_FALSE(reader->Read("a").has_value());
  EXPECT_FALSE(reader->Read("zzz").has_value());
  // Without a node cache (every lookup re-reads its path) and with a tiny one (constant eviction), reads agree.
  for (size_t cache_bytes : {size_t{0}, size_t{20000}}) {
    OcdbtReader other(fs, "/db", cache_bytes);
    for (int i = 0; i < 10000; i += 37) {
      std::string key = "params/layer_" + std::to_string(i % 97) + "/kernel/" + std::to_string(i);
      EXPECT_TRUE(other.Read(key) == data[key]) << key;
    }
    EXPECT_EQ(other.ListKeys().size(), data.size());
  }
  // Every prefix of some keys lists exactly the keys with that prefix.
  for (const std::string prefix : {"p", "params/layer_1", "params/layer_10/", "params/layer_10/kernel/10",
                                   "params/layer_96/kernel/9", "params/layer_"}) {
    std::vector<std::string> expected;
    for (const auto& [key, value] : data) {
      if (key.starts_with(prefix)) expected.push_back(key);
    }
    EXPECT_EQ(reader->ListKeys(prefix), expected) << prefix;
  }
}

TEST(OcdbtWriter, NodesStayWithinMaxDecodedSize) {
  // Walk the tree and decode every node; the decoded body must fit max_decoded_node_bytes.
  auto fs = NewInMemoryFileSystem();
  OcdbtWriterOptions options;
  options.max_decoded_node_bytes = 2048;
  options.zstd = false;  // so that an encoded node's size bounds its decoded body
  auto data = ManyKeys(3000);
  auto reader = RoundTrip(fs, "/db", data, options);
  ASSERT_GE(reader->latest_version()->root_height, 1);
  std::vector<std::filesystem::path> files;
  ListFilesRecursive(*fs, "/db/d", files);
  uint64_t total_tree_bytes = 0;
  std::function<void(const ocdbt::IndirectRef&, uint8_t)> walk = [&](const ocdbt::IndirectRef& ref, uint8_t height) {
    std::string bytes = fs->ReadFile("/db/" + ref.file.FullPath()).substr(ref.offset, ref.length);
    EXPECT_LE(bytes.size(), 2048u + 14 + 4);  // body limit + envelope header and CRC
    total_tree_bytes += bytes.size();
    auto node = ocdbt::DecodeBtreeNode(bytes, "", 1 << 20, "node");
    EXPECT_EQ(node.height, height);
    for (const auto& e : node.interior_entries) walk(e.child, static_cast<uint8_t>(height - 1));
  };
  walk(reader->latest_version()->root, reader->latest_version()->root_height);
  EXPECT_EQ(total_tree_bytes, reader->latest_version()->stats.num_tree_bytes);
}

TEST(OcdbtWriter, LongSharedPrefixesAndBinaryKeys) {
  auto fs = NewInMemoryFileSystem();
  std::map<std::string, std::string> data;
  std::string long_prefix(3000, 'p');
  for (int i = 0; i < 300; ++i) data[long_prefix + "/" + std::to_string(i)] = std::to_string(i);
  for (int i = 0; i < 256; ++i) {
    std::string key = {'\0', static_cast<char>(i), '\xff'};
    data[key] = "binary " + std::to_string(i);
    data[std::string(1, static_cast<char>(i))] = RandomBytes(static_cast<size_t>(i) * 7, static_cast<uint32_t>(i));
  }
  data[std::string(65535, 'k')] = "longest key";
  OcdbtWriterOptions options;
  options.max_decoded_node_bytes = 8192;
  options.max_inline_value_bytes = 500;
  auto reader = RoundTrip(fs, "/db", data, options);
  EXPECT_GE(reader->latest_version()->root_height, 1);
  // Unsigned byte order: "\x80" sorts after "\x7f".
  auto keys = reader->ListKeys();
  EXPECT_LT(std::find(keys.begin(), keys.end(), std::string("\x7f")),
            std::find(keys.begin(), keys.end(), std::string("\x80")));
  EXPECT_EQ(reader->ListKeys(std::string(1, '\0')).size(), 257u);
  EXPECT_EQ(reader->ListKeys(long_prefix).size(), 300u);
  EXPECT_EQ(reader->ListKeys(long_prefix + "/29"), (std::vector<std::string>{long_prefix + "/29",
                                                                              long_prefix + "/290",
                                                                              long_prefix + "/291",
                                                                              long_prefix + "/292",
                                                                              long_prefix + "/293",
                                                                              long_prefix + "/294",
                                                                              long_prefix + "/295",
                                                                              long_prefix + "/296",
                                                                              long_prefix + "/297",
                                                                              long_prefix + "/298",
                                                                              long_prefix + "/299"}));
}

TEST(OcdbtWriter, UncompressedDatabase) {
  auto fs = NewInMemoryFileSystem();
  OcdbtWriterOptions options;
  options.zstd = false;
  auto reader = RoundTrip(fs, "/db", ManyKeys(500), options);
  EXPECT_FALSE(reader->manifest().config.compression.zstd);
}

TEST(OcdbtWriter, ConcurrentWrites) {
  auto fs = NewInMemoryFileSystem();
  OcdbtWriterOptions options;
  options.write_buffer_bytes = 64 << 10;  // several buffer flushes while threads race
  auto writer = NewOcdbtWriter(fs, "/db", options);
  constexpr int kThreads = 8, kPerThread = 300;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
        writer->Write(key, i % 3 == 0 ? RandomBytes(5000, static_cast<uint32_t>(t * 1000 + i)) : key);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  // Reads before the flush see buffered and written values alike.
  EXPECT_EQ(*writer->Read("t3/7"), "t3/7");
  EXPECT_EQ(*writer->Read("t3/9"), RandomBytes(5000, 3009));
  EXPECT_EQ(writer->ListKeys("t5/").size(), static_cast<size_t>(kPerThread));
  writer->Flush();
  OcdbtReader reader(fs, "/db");
  EXPECT_EQ(reader.ListKeys().size(), static_cast<size_t>(kThreads * kPerThread));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
      EXPECT_EQ(*reader.Read(key), i % 3 == 0 ? RandomBytes(5000, static_cast<uint32_t>(t * 1000 + i)) : key);
    }
  }
  // Concurrent reads on one reader.
  std::vector<std::thread> readers;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < kThreads; ++t) {
    readers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
        if (i % 3 != 0 && reader.Read(key) != key) ++mismatches;
      }
    });
  }
  for (auto& thread : readers) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(OcdbtWriter, LastWriteWinsAndWriteOnce) {
  auto fs = NewInMemoryFileSystem();
  auto writer = NewOcdbtWriter(fs, "/db");
  writer->Write("k", "first");
  writer->Write("k", std::string(5000, 's'));
  writer->Write("j", std::string(5000, 'j'));
  writer->Write("j", "small");
  writer->Flush();
  EXPECT_THROW(writer->Write("k", "late"), InvalidArgumentError);
  writer->Flush();  // a second flush is harmless
  EXPECT_EQ(*writer->Read("k"), std::string(5000, 's'));
  EXPECT_EQ(*writer->Read("j"), "small");
  EXPECT_EQ(writer->ListKeys(), (std::vector<std::string>{"j", "k"}));
  // A second writer on the same directory would orphan the first database.
  EXPECT_THROW(NewOcdbtWriter(fs, "/db"), AlreadyExistsError);
  EXPECT_THROW(writer->Write(std::string(65536, 'x'), "v"), InvalidArgumentError);
  OcdbtReader reader(fs, "/db");
  EXPECT_THROW(reader.Write("a", "b"), InvalidArgumentError);
  EXPECT_THROW(reader.Flush(), InvalidArgumentError);
}

TEST(OcdbtWriter, ManifestIsWrittenLastAndAlone) {
  auto fs = NewInMemoryFileSystem();
  auto writer = NewOcdbtWriter(fs, "/db");
  writer->Write("a", std::string(4000, 'a'));
  EXPECT_FALSE(fs->Exists("/db/manifest.ocdbt"));
  EXPECT_THROW(OpenOcdbtForRead(fs, "/db"), NotFoundError);
  writer->Flush();
  EXPECT_EQ(fs->ListDir("/db"), (std::vector<std::string>{"d", "manifest.ocdbt"}));  // no temp file left behind
  OcdbtReader reader(fs, "/db");
  const auto& v = *reader.latest_version();
  EXPECT_GT(v.commit_time_ns, uint64_t{1700000000} * 1000000000);
  EXPECT_EQ(v.stats.num_indirect_value_bytes, 4000u);
}

}  // namespace
}  // namespace cairn::kvstore

namespace cairn::kvstore {
namespace {

TEST(OcdbtWriterLanes, ConcurrentLargeValuesGoToSeveralDataFiles) {
  auto fs = NewInMemoryFileSystem();
  OcdbtWriterOptions options;
  options.parallel_data_files = 3;
  auto writer = NewOcdbtWriter(fs, "/db", options);
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        writer->Write("k" + std::to_string(t) + "_" + std::to_string(i), std::string(5000 + i, static_cast<char>('a' + t)));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  // Values still buffered in any lane read back before the flush, and after it.
  EXPECT_EQ(*writer->Read("k3_7"), std::string(5007, 'd'));
  writer->Flush();
  EXPECT_GE(fs->ListDir("/db/d").size(), 3u);
  auto reader = OpenOcdbtForRead(fs, "/db");
  for (int t = 0; t < 6; ++t) {
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ(*reader->Read("k" + std::to_string(t) + "_" + std::to_string(i)),
                std::string(5000 + i, static_cast<char>('a' + t)));
    }
  }
}

}  // namespace
}  // namespace cairn::kvstore
