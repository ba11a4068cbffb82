// Decompression bombs (issue 13): a zstd frame of a few hundred bytes that decodes to 64 MiB, as a zarr chunk and as
// an OCDBT B+tree node body, with its true content size, none, and a lying one. The decoders stop as soon as the
// output passes its limit: an error, and the peak RSS grows by far less than the bomb's size.
#include <zstd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cairn/error.h"
#include "core/crc32c.h"
#include "kvstore/ocdbt/btree_node.h"
#include "kvstore/ocdbt/envelope.h"
#include "peak_rss.h"
#include "core/zstd.h"

namespace cairn {
namespace {

constexpr size_t kBombBytes = size_t{64} << 20;

// The frames: content size recorded, not recorded, and recorded as 64 bytes (a lie).
std::vector<std::string> Bombs() {
  const std::string zeros(kBombBytes, '\0');
  auto compress = [&](bool content_size) {
    std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> context(ZSTD_createCCtx(), ZSTD_freeCCtx);
    ZSTD_CCtx_setParameter(context.get(), ZSTD_c_contentSizeFlag, content_size ? 1 : 0);
    std::string out(ZSTD_compressBound(zeros.size()), '\0');
    out.resize(ZSTD_compress2(context.get(), out.data(), out.size(), zeros.data(), zeros.size()));
    return out;
  };
  std::string lying = compress(true);
  const auto descriptor = static_cast<unsigned char>(lying[4]);
  const size_t at = 5 + ((descriptor & 0x20) ? 0 : 1);  // after the window descriptor, if any
  for (int i = 0; i < 4; ++i) lying[at + i] = static_cast<char>(i == 0 ? 64 : 0);
  return {compress(true), compress(false), lying};
}

TEST(DecompressionBombs, AreRefusedAtTheirLimit) {
  const std::vector<std::string> bombs = Bombs();  // (made before the peak is measured: they start as 64 MiB)
  cairn::testing::ResetPeakRss();
  const uint64_t before = cairn::testing::PeakRss();
  int refused = 0;
  for (const std::string& frame : bombs) {
    ASSERT_LT(frame.size(), size_t{8192});
    // A zarr chunk of 64 bytes.
    std::string out(64, '\0');
    EXPECT_THROW(ZstdDecompressInto(frame, out.data(), out.size(), "chunk"), CorruptionError);
    // A B+tree node limited to 1 MiB decoded.
    const std::string node = kvstore::ocdbt::EncodeEnvelope(kvstore::ocdbt::kBtreeNodeMagic, "",
                                                            kvstore::ocdbt::Compression{.zstd = false});
    std::string bomb_node = node.substr(0, 12) + std::string("\x00\x01", 2) + frame + std::string(4, '\0');
    // Length and CRC, so that the bomb reaches the decompressor.
    for (int i = 0; i < 8; ++i) bomb_node[4 + i] = static_cast<char>((bomb_node.size() >> (8 * i)) & 0xff);
    const uint32_t crc = Crc32c(std::string_view(bomb_node).substr(0, bomb_node.size() - 4));
    for (int i = 0; i < 4; ++i) bomb_node[bomb_node.size() - 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    try {
      kvstore::ocdbt::DecodeBtreeNode(bomb_node, "", size_t{1} << 20, "bomb node");
      ADD_FAILURE() << "a node decoding to 64 MiB passed a 1 MiB limit";
    } catch (const CorruptionError& e) {
      // "decodes to more than 1048576 bytes", or, for the lying content size, zstd's own refusal.
      EXPECT_NE(std::string(e.what()).find("bomb node"), std::string::npos) << e.what();
    }
    refused += 2;
  }
  const uint64_t grown = cairn::testing::PeakRssGrowth(before);
  EXPECT_LT(grown, uint64_t{16} << 20) << "decoding bombs took " << (grown >> 20) << " MiB";
  EXPECT_EQ(refused, 6);
}

}  // namespace
}  // namespace cairn
