#include "kvstore/checksummed_kvstore.h"

#include <gtest/gtest.h>

#include "cairn/error.h"
#include "core/crc32c.h"
#include "kvstore/directory_kvstore.h"
#include "ocdbt_test_util.h"

namespace cairn::kvstore {
namespace {

constexpr uint64_t kBlock = kCrc32cBlockBytes;

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 31 + i / 7);
  return s;
}

// A value of 2.5 blocks and a small one, written through the decorator; what it recorded is then what a reader
// checks against.
struct Fixture {
  std::shared_ptr<FileSystem> fs = NewInMemoryFileSystem();
  std::string big = Pattern(kBlock * 5 / 2);
  std::string small = Pattern(100);
  ValueChecksums recorded;

  Fixture() {
    ChecksummedKvStore writer(std::make_shared<DirectoryKvStore>(fs, "/item"));
    writer.Write("p/0", big);
    writer.WriteView("p/.zarray", small);
    writer.Flush();
    recorded = writer.recorded();
  }
  ChecksummedKvStore Reader() { return ChecksummedKvStore(std::make_shared<DirectoryKvStore>(fs, "/item"), recorded); }
  void Flip(const std::string& key, size_t at) {
    std::string bytes = fs->ReadFile("/item/" + key);
    bytes[at] ^= 1;
    fs->WriteFile("/item/" + key, bytes, false);
  }
};

TEST(ChecksummedKvStore, RecordsWholeAndBlockCrcsOfWrites) {
  Fixture f;
  EXPECT_EQ(f.recorded.whole.at("p/0"), Crc32c(f.big));
  EXPECT_EQ(f.recorded.whole.at("p/.zarray"), Crc32c(f.small));
  ASSERT_EQ(f.recorded.blocks.at("p/0").size(), 3u);
  EXPECT_EQ(f.recorded.blocks.at("p/0")[2], Crc32c(std::string_view(f.big).substr(2 * kBlock)));
  EXPECT_EQ(f.recorded.blocks.count("p/.zarray"), 0u);  // one block or less: the whole CRC is its block's
  ChecksummedKvStore writer(std::make_shared<DirectoryKvStore>(f.fs, "/other"));
  writer.Record("shared/0", 7, {1, 2});
  EXPECT_EQ(writer.recorded().whole.at("shared/0"), 7u);
  EXPECT_EQ(writer.recorded().blocks.at("shared/0"), (std::vector<uint32_t>{1, 2}));
}

TEST(ChecksummedKvStore, IntactValuesReadInEveryWay) {
  Fixture f;
  auto store = f.Reader();
  EXPECT_EQ(*store.Read("p/0"), f.big);
  std::string into(f.big.size(), '\0');
  uint32_t crc = 0;
  ASSERT_TRUE(store.ReadInto("p/0", into.data(), into.size(), &crc));
  EXPECT_EQ(into, f.big);
  EXPECT_EQ(crc, Crc32c(f.big));
  EXPECT_EQ(*store.ReadRange("p/0", kBlock + 10, 20), f.big.substr(kBlock + 10, 20));
  EXPECT_EQ(*store.ReadRange("p/0", kBlock * 2 + 5, kBlock / 2 - 5), f.big.substr(kBlock * 2 + 5));  // the last block
  EXPECT_EQ(*store.ReadRange("p/0", 0, f.big.size()), f.big);
  EXPECT_EQ(*store.ReadRange("p/.zarray", 3, 4), f.small.substr(3, 4));
  EXPECT_FALSE(store.Read("absent").has_value());
  EXPECT_FALSE(store.ReadRange("absent", 0, 1).has_value());
  EXPECT_THROW(store.ReadRange("p/0", f.big.size() - 1, 2), InvalidArgumentError);
  EXPECT_EQ(*store.ValueSize("p/0"), f.big.size());
}

TEST(ChecksummedKvStore, AFlippedByteFailsWholeReads) {
  Fixture f;
  f.Flip("p/0", 5);
  f.Flip("p/.zarray", 0);
  auto store = f.Reader();
  EXPECT_THROW(store.Read("p/0"), CorruptionError);
  std::string into(f.big.size(), '\0');
  EXPECT_THROW(store.ReadInto("p/0", into.data(), into.size()), CorruptionError);
  EXPECT_THROW(store.Read("p/.zarray"), CorruptionError);
  EXPECT_THROW(store.ReadRange("p/.zarray", 50, 1), CorruptionError);  // a small value is checked whole
}

TEST(ChecksummedKvStore, RangedReadsCheckOnlyTheBlocksTheyTouch) {
  Fixture f;
  f.Flip("p/0", kBlock + 3);  // in the second block
  auto store = f.Reader();
  EXPECT_EQ(*store.ReadRange("p/0", 10, 100), f.big.substr(10, 100));                // first block: intact
  EXPECT_EQ(*store.ReadRange("p/0", 2 * kBlock + 1, 100), f.big.substr(2 * kBlock + 1, 100));  // third
  EXPECT_THROW(store.ReadRange("p/0", kBlock + 1000, 10), CorruptionError);  // its block holds the flipped byte
  EXPECT_THROW(store.ReadRange("p/0", kBlock - 10, 20), CorruptionError);    // straddles into it
}

// A value of many blocks recorded with its whole CRC only (checkpoints of cairn before block CRCs): a ranged read
// reads it all, in pieces, and checks that CRC; it returns only the range, and is not a value to read in pieces.
TEST(ChecksummedKvStore, RangedReadsOfAValueWithOnlyItsWholeCrcCheckItAll) {
  Fixture f;
  const std::string large = Pattern(kBlock * 40 + 123);  // more than one piece of the whole-CRC read
  {
    ChecksummedKvStore writer(std::make_shared<DirectoryKvStore>(f.fs, "/item"));
    writer.Write("p/1", large);
    writer.Flush();
    f.recorded.whole["p/1"] = writer.recorded().whole.at("p/1");
  }
  auto store = f.Reader();
  EXPECT_FALSE(store.ReadsInPieces("p/1"));
  EXPECT_TRUE(store.ReadsInPieces("p/0"));
  EXPECT_EQ(*store.ReadRange("p/1", 10, 100), large.substr(10, 100));
  EXPECT_EQ(*store.ReadRange("p/1", kBlock * 16 - 5, kBlock + 10), large.substr(kBlock * 16 - 5, kBlock + 10));
  EXPECT_EQ(*store.ReadRange("p/1", 0, large.size()), large);
  EXPECT_EQ(*store.ReadRange("p/1", large.size(), 0), "");
  EXPECT_THROW(store.ReadRange("p/1", large.size() - 1, 2), InvalidArgumentError);
  f.Flip("p/1", kBlock * 39);  // far from the range read: still found
  EXPECT_THROW(store.ReadRange("p/1", 10, 100), CorruptionError);
}

TEST(ChecksummedKvStore, AValueOfAnotherSizeThanItsBlocksIsCorrupt) {
  Fixture f;
  f.fs->WriteFile("/item/p/0", f.big + "x", false);
  auto store = f.Reader();
  EXPECT_THROW(store.ReadRange("p/0", 2 * kBlock, 10), CorruptionError);
  f.fs->WriteFile("/item/p/0", f.big.substr(0, kBlock), false);
  EXPECT_THROW(store.ReadRange("p/0", 10, 10), CorruptionError);  // one block left of three
}

// A DirectoryKvStore that counts the lookups a ranged read makes (the decorator's ranged reads are on the restore
// path of every box that cuts an uncompressed chunk).
class CountingStore final : public KvStore {
 public:
  CountingStore(std::shared_ptr<FileSystem> fs, std::filesystem::path root) : inner_(std::move(fs), std::move(root)) {}
  std::optional<uint64_t> ValueSize(std::string_view key) override {
    ++value_sizes;
    return inner_.ValueSize(key);
  }
  std::optional<std::string> ReadRange(std::string_view key, uint64_t offset, uint64_t length) override {
    ++ranges;
    return inner_.ReadRange(key, offset, length);
  }
  std::optional<SizedRange> ReadRangeUpTo(std::string_view key, uint64_t offset, uint64_t length) override {
    ++ranges;
    return inner_.ReadRangeUpTo(key, offset, length);
  }
  std::optional<std::string> Read(std::string_view key, uint64_t max_bytes) override {
    return inner_.Read(key, max_bytes);
  }
  void Write(std::string_view key, std::string value) override { inner_.Write(key, std::move(value)); }
  std::vector<std::string> ListKeys(std::string_view prefix) override { return inner_.ListKeys(prefix); }
  void Flush() override { inner_.Flush(); }
  std::string Describe() const override { return inner_.Describe(); }

  int value_sizes = 0;
  int ranges = 0;

 private:
  DirectoryKvStore inner_;
};

TEST(ChecksummedKvStore, ARangedReadOfTheLastPartialBlockIsCheckedInOneLookup) {
  Fixture f;
  auto inner = std::make_shared<CountingStore>(f.fs, "/item");
  ChecksummedKvStore store(inner, f.recorded);
  // The last block holds half a block: read within it, and across into it, intact.
  EXPECT_EQ(*store.ReadRange("p/0", 2 * kBlock + 7, 100), f.big.substr(2 * kBlock + 7, 100));
  EXPECT_EQ(*store.ReadRange("p/0", 2 * kBlock - 3, kBlock / 2 + 3), f.big.substr(2 * kBlock - 3));
  EXPECT_EQ(inner->value_sizes, 0);
  EXPECT_EQ(inner->ranges, 2);
  // A flipped byte at the very end of the value: every ranged read that touches the last block sees it.
  f.Flip("p/0", f.big.size() - 1);
  EXPECT_THROW(store.ReadRange("p/0", 2 * kBlock + 7, 100), CorruptionError);
  EXPECT_THROW(store.ReadRange("p/0", f.big.size() - 1, 1), CorruptionError);
  EXPECT_THROW(store.ReadRange("p/0", f.big.size(), 0), CorruptionError);
  EXPECT_EQ(*store.ReadRange("p/0", kBlock, 100), f.big.substr(kBlock, 100));  // the middle block is intact
  // Out of range, and sizes that disagree with the blocks, fail as before.
  EXPECT_THROW(store.ReadRange("p/0", f.big.size() - 1, 2), InvalidArgumentError);
  EXPECT_THROW(store.ReadRange("p/0", UINT64_MAX, 2), InvalidArgumentError);
  f.fs->WriteFile("/item/p/0", f.big + std::string(kBlock, 'x'), false);
  EXPECT_THROW(store.ReadRange("p/0", 10, 10), CorruptionError);
  EXPECT_EQ(inner->value_sizes, 0);
}

TEST(ChecksummedKvStore, KeysWithoutARecordReadUnchecked) {
  Fixture f;
  DirectoryKvStore(f.fs, "/item").Write("q/0", "anything");  // not through the decorator: nothing recorded
  auto store = f.Reader();
  EXPECT_EQ(*store.Read("q/0"), "anything");
  EXPECT_EQ(*store.ReadRange("q/0", 1, 3), "nyt");
}

}  // namespace
}  // namespace cairn::kvstore
