#include "core/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace cairn {
namespace {

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4: 32 bytes of zeros
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);  // RFC 3720 B.4: 32 bytes of 0xff
  EXPECT_EQ(crc32c_internal::Software("123456789", 0), 0xE3069283u);
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(Crc32c, IncrementalEqualsOneShot) {
  std::string data = RandomBytes(10007, 1);
  uint32_t whole = Crc32c(data);
  for (size_t split : {size_t{0}, size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{4096}, data.size()}) {
    EXPECT_EQ(Crc32c(std::string_view(data).substr(split), Crc32c(std::string_view(data).substr(0, split))), whole)
        << "split at " << split;
  }
}

TEST(Crc32c, CombineJoinsConsecutivePieces) {
  std::string data = RandomBytes(100003, 2);
  const std::string_view view(data);
  for (size_t split : {size_t{0}, size_t{1}, size_t{8}, size_t{4097}, size_t{65536}, data.size()}) {
    const auto a = view.substr(0, split), b = view.substr(split);
    EXPECT_EQ(Crc32cCombine(Crc32c(a), Crc32c(b), b.size()), Crc32c(view)) << "split at " << split;
  }
}

TEST(Crc32c, HardwareMatchesSoftware) {
  if (!crc32c_internal::HardwareAvailable()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  for (size_t n : {0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 3071, 3072, 3073, 3080, 4099, 65537, 1000003}) {
    std::string data = RandomBytes(n, static_cast<uint32_t>(n));
    for (uint32_t seed : {0u, 0x12345678u}) {
      // Also at an odd offset, so the 8-byte loads are unaligned.
      std::string_view view = std::string_view(data).substr(n > 0 ? 1 : 0);
      EXPECT_EQ(crc32c_internal::Hardware(view, seed), crc32c_internal::Software(view, seed)) << n;
    }
  }
}

}  // namespace
}  // namespace cairn
