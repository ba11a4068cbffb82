// Mapped values for lazy restores: ReadableFile::MapReadOnly, KvStore::MapValue, and the checks
// ChecksummedKvStore::MapValue makes before handing bytes out (up front, or per block on access).
#include <gtest/gtest.h>

#include <cstring>

#include "cairn/error.h"
#include "cairn/file_system.h"
#include "core/crc32c.h"
#include "kvstore/checked_pager.h"
#include "kvstore/checksummed_kvstore.h"
#include "kvstore/directory_kvstore.h"
#include "test_util.h"

namespace cairn::kvstore {
namespace {

constexpr uint64_t kBlock = kCrc32cBlockBytes;

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i * 31 + i / 7);
  return s;
}

std::string Bytes(const std::shared_ptr<const std::byte>& p, size_t offset, size_t n) {
  return std::string(reinterpret_cast<const char*>(p.get()) + offset, n);
}

struct Fixture {
  cairn::testing::TempDir dir;
  std::shared_ptr<FileSystem> fs = FileSystem::Default();
  std::string big = Pattern(kBlock * 5 / 2);
  std::string small = Pattern(100);
  ValueChecksums recorded;

  Fixture() {
    ChecksummedKvStore writer(std::make_shared<DirectoryKvStore>(fs, dir / "item"));
    writer.Write("p/0", big);
    writer.Write("p/s", small);
    writer.Flush();
    recorded = writer.recorded();
  }
  ChecksummedKvStore Reader() {
    return ChecksummedKvStore(std::make_shared<DirectoryKvStore>(fs, dir / "item"), recorded);
  }
  void Flip(const std::string& key, size_t at) {
    std::string bytes = fs->ReadFile(dir / "item" / key);
    bytes[at] ^= 1;
    fs->WriteFile(dir / "item" / key, bytes, false);
  }
};

TEST(MapReadOnly, PointsAtTheOffsetWhateverItsAlignment) {
  cairn::testing::TempDir dir;
  auto fs = FileSystem::Default();
  const std::string content = Pattern(3 * 4096 + 123);
  fs->WriteFile(dir / "f", content, false);
  auto file = fs->OpenForRead(dir / "f");
  for (uint64_t offset : {uint64_t{0}, uint64_t{1}, uint64_t{4095}, uint64_t{4096}, uint64_t{8193}}) {
    auto mapped = file->MapReadOnly(offset, 200);
    ASSERT_TRUE(mapped) << offset;
    EXPECT_EQ(Bytes(mapped, 0, 200), content.substr(offset, 200)) << offset;
  }
  EXPECT_FALSE(file->MapReadOnly(content.size() - 10, 11));  // past the end
  EXPECT_FALSE(file->MapReadOnly(0, 0));
  auto memory = NewInMemoryFileSystem();
  memory->WriteFile("/f", content, false);
  EXPECT_FALSE(memory->OpenForRead("/f")->MapReadOnly(0, 100));  // cannot map: the caller reads instead
}

TEST(MapValue, IntactValuesMapInEveryMode) {
  Fixture f;
  auto store = f.Reader();
  for (MapCheck check : {MapCheck::kUpFront, MapCheck::kOnAccess}) {
    auto big = store.MapValue("p/0", f.big.size(), check);
    ASSERT_TRUE(big);
    EXPECT_EQ(Bytes(big, 0, f.big.size()), f.big);
    auto small = store.MapValue("p/s", f.small.size(), check);
    ASSERT_TRUE(small);
    EXPECT_EQ(Bytes(small, 0, f.small.size()), f.small);
  }
  EXPECT_FALSE(store.MapValue("absent", 10));
  EXPECT_THROW(store.MapValue("p/0", f.big.size() + 1), CorruptionError);
  // Unchecked (no recorded CRC): the file's mapping as it is.
  DirectoryKvStore plain(f.fs, f.dir / "item");
  auto mapped = plain.MapValue("p/0", f.big.size());
  ASSERT_TRUE(mapped);
  EXPECT_EQ(Bytes(mapped, 0, f.big.size()), f.big);
}

TEST(MapValue, UpFrontRefusesABadBlockNamingIt) {
  Fixture f;
  f.Flip("p/0", kBlock + 3);
  f.Flip("p/s", 7);
  auto store = f.Reader();
  try {
    store.MapValue("p/0", f.big.size(), MapCheck::kUpFront);
    ADD_FAILURE() << "a bad block was handed out";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("bytes [65536, +65536)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(store.MapValue("p/s", f.small.size(), MapCheck::kUpFront), CorruptionError);
}

TEST(MapValue, OnAccessChecksTheBlocksTouched) {
  Fixture f;
  f.Flip("p/0", kBlock + 3);  // the second block
  auto store = f.Reader();
  if (!OnAccessPagingAvailable()) {  // documented fallback: up front
    EXPECT_THROW(store.MapValue("p/0", f.big.size(), MapCheck::kOnAccess), CorruptionError);
    return;
  }
  auto mapped = store.MapValue("p/0", f.big.size(), MapCheck::kOnAccess);
  ASSERT_TRUE(mapped);
  EXPECT_EQ(Bytes(mapped, 2 * kBlock, kBlock / 2), f.big.substr(2 * kBlock));  // the last block, first
  EXPECT_EQ(Bytes(mapped, 0, kBlock), f.big.substr(0, kBlock));
}

}  // namespace
}  // namespace cairn::kvstore
