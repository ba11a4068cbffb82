#include "core/sha256.h"

#include <gtest/gtest.h>

#include "core/hex.h"

namespace cairn {
namespace {

TEST(Sha256, KnownDigests) {
  EXPECT_EQ(HexEncode(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexEncode(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, HmacRfc4231Case2) {
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Hex, RoundTripsAndRejectsWhatItDoesNotWrite) {
  const std::string bytes("\x00\x7f\x80\xff", 4);
  EXPECT_EQ(HexEncode(bytes), "007f80ff");
  EXPECT_EQ(HexDecode("007f80ff"), bytes);
  EXPECT_EQ(HexDecode(""), std::string());
  EXPECT_EQ(HexDecode("abc"), std::nullopt);   // odd length
  EXPECT_EQ(HexDecode("AB"), std::nullopt);    // upper case is not what HexEncode writes
  EXPECT_EQ(HexDecode("zz"), std::nullopt);
}

}  // namespace
}  // namespace cairn
