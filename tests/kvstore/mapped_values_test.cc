// Mapped values for lazy restores: ReadableFile::MapReadOnly, KvStore::MapValue, and the checks
// ChecksummedKvStore::MapValue makes before handing bytes out (up front, or per block on access).
#include <gtest/gtest.h>
#include <unistd.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

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

// The pager itself (MapCheckedOnAccess), over a fetcher that counts its calls and can fail chosen blocks.
struct CountingFetcher {
  std::string content;
  uint64_t bad_block = UINT64_MAX;
  std::chrono::microseconds delay{0};
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::vector<std::atomic<int>>> per_block;

  explicit CountingFetcher(size_t blocks)
      : content(Pattern(blocks * kBlock - 100)), per_block(std::make_shared<std::vector<std::atomic<int>>>(blocks)) {}
  BlockFetcher Fetcher() const {
    return [content = content, bad = bad_block, delay = delay, calls = calls, per_block = per_block](
               uint64_t block, char* out, size_t length) {
      ++*calls;
      ++(*per_block)[block];
      if (delay.count()) std::this_thread::sleep_for(delay);
      if (block == bad) throw CorruptionError("it fails its CRC-32C check");
      std::memcpy(out, content.data() + block * kBlock, length);
    };
  }
};

// Whether on-access paging runs here; where it does not (ThreadSanitizer builds, no userfaultfd), checks that
// MapCheckedOnAccess says so with a null region, which sends its callers to up-front checks.
bool PagerAvailableElseNull() {
  if (OnAccessPagingAvailable()) return true;
  EXPECT_FALSE(MapCheckedOnAccess(kBlock, CountingFetcher(1).Fetcher(), "unavailable"));
  return false;
}

// Waits until no fetch has started for a while (readahead done).
void Settle(const std::atomic<int>& calls) {
  for (int last = -1; last != calls.load();) {
    last = calls.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

TEST(OnAccessPager, ARandomReadFetchesOnlyItsBlock) {
  if (!PagerAvailableElseNull()) return;
  CountingFetcher f(200);
  auto region = MapCheckedOnAccess(f.content.size(), f.Fetcher(), "random");
  ASSERT_TRUE(region);
  EXPECT_EQ(Bytes(region, 100 * kBlock + 5, 10), f.content.substr(100 * kBlock + 5, 10));
  Settle(*f.calls);
  EXPECT_EQ(f.calls->load(), 1);  // no readahead for a read that does not follow one
}

TEST(OnAccessPager, ASequentialReadIsReadAheadAndEveryBlockFetchedOnce) {
  if (!PagerAvailableElseNull()) return;
  CountingFetcher f(300);
  auto region = MapCheckedOnAccess(f.content.size(), f.Fetcher(), "sequential");
  ASSERT_TRUE(region);
  EXPECT_EQ(Bytes(region, 0, 10), f.content.substr(0, 10));
  Settle(*f.calls);
  EXPECT_GT(f.calls->load(), 1);     // the blocks after the first were read ahead
  EXPECT_LE(f.calls->load(), 1 + 64);  // ... but not the whole value
  EXPECT_EQ(Bytes(region, 0, f.content.size()), f.content);
  EXPECT_EQ(f.calls->load(), 300);
  for (const auto& n : *f.per_block) EXPECT_EQ(n.load(), 1);
}

TEST(OnAccessPager, ManyReadersAtOnceSeeTheBytesAndEachBlockIsFetchedOnce) {
  if (!PagerAvailableElseNull()) return;
  CountingFetcher f(257);
  f.delay = std::chrono::microseconds(200);  // so that readers meet blocks being filled
  auto region = MapCheckedOnAccess(f.content.size(), f.Fetcher(), "many readers");
  ASSERT_TRUE(region);
  const size_t n = f.content.size();
  std::vector<std::thread> readers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 8; ++t) {
    readers.emplace_back([&, t] {
      const auto* p = reinterpret_cast<const char*>(region.get());
      for (size_t i = 0; i < n; i += 1024) {
        const size_t at = t % 2 ? n - 1 - i : (i + t * 37 * kBlock) % n;  // backwards, or forwards from elsewhere
        if (p[at] != f.content[at]) ++wrong;
      }
    });
  }
  for (auto& r : readers) r.join();
  EXPECT_EQ(wrong.load(), 0);
  for (const auto& c : *f.per_block) EXPECT_EQ(c.load(), 1);
}

TEST(OnAccessPager, ABadBlockOnlyReadAheadDoesNotAbort) {
  if (!PagerAvailableElseNull()) return;
  CountingFetcher f(20);
  f.bad_block = 5;
  auto region = MapCheckedOnAccess(f.content.size(), f.Fetcher(), "bad block");
  ASSERT_TRUE(region);
  EXPECT_EQ(Bytes(region, 0, 5 * kBlock), f.content.substr(0, 5 * kBlock));
  Settle(*f.calls);
  EXPECT_EQ((*f.per_block)[5].load(), 1);  // read ahead, failed, remembered
  EXPECT_EQ(Bytes(region, 6 * kBlock, f.content.size() - 6 * kBlock), f.content.substr(6 * kBlock));
}

TEST(OnAccessPagerDeathTest, TouchingABadBlockReadAheadAbortsNamingIt) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  if (!PagerAvailableElseNull()) return;
  EXPECT_DEATH(
      {
        CountingFetcher f(20);
        f.bad_block = 5;
        auto region = MapCheckedOnAccess(f.content.size(), f.Fetcher(), "value v");
        std::string all = Bytes(region, 0, f.content.size());
        std::printf("%d\n", all[0]);
      },
      "lazy restore: value v: block 5 .*fails its CRC-32C check");
}

// A fork child that lets go of its copy of the parent's region touches nothing of the parent's: the parent's
// unfilled blocks are still filled on access (an unregister through the inherited userfaultfd would make them read
// as zeros there), and the child exits; a region of its own works in the child. ThreadSanitizer builds have no
// on-access pager (PagerAvailableElseNull), and TSan ends a fork child that starts threads.
TEST(OnAccessPager, AForkChildLeavesTheParentsRegionsAlone) {
  if (!PagerAvailableElseNull()) return;
  CountingFetcher f(200);  // 12.5 MiB: readahead from the first block stops far before the end
  auto region = MapCheckedOnAccess(f.content.size(), f.Fetcher(), "parent's");
  ASSERT_TRUE(region);
  EXPECT_EQ(Bytes(region, 0, 100), f.content.substr(0, 100));  // the first blocks filled, the last ones not
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(30);
    region.reset();  // the child's copy of the parent's region goes
    CountingFetcher g(4);
    auto own = MapCheckedOnAccess(g.content.size(), g.Fetcher(), "child's");
    const bool ok = own && Bytes(own, 0, g.content.size()) == g.content;
    own.reset();
    // _exit: LeakSanitizer's check at exit would count what the parent's threads held on their stacks (the
    // child has no such threads) as leaks. Exiting through exit() is ThreadPool.AForkChildGetsAPoolOfItsOwnAndExits.
    ::_exit(ok ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child was killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(Bytes(region, 0, f.content.size()), f.content);  // every block, the unfilled ones too
}

TEST(OnAccessPager, ARegionReleasedWhileReadAheadRunsWaitsForIt) {
  if (!PagerAvailableElseNull()) return;
  for (int round = 0; round < 20; ++round) {
    CountingFetcher f(100);
    f.delay = std::chrono::microseconds(300);
    auto region = MapCheckedOnAccess(f.content.size(), f.Fetcher(), "released");
    ASSERT_TRUE(region);
    EXPECT_EQ(Bytes(region, round * 10, 10), f.content.substr(round * 10, 10));
    region.reset();  // readahead of the next blocks is queued or under way
    EXPECT_LT(f.calls->load(), 100);
  }
}

}  // namespace
}  // namespace cairn::kvstore
