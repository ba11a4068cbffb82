// The chunk codecs: zstd frames of raw blocks, the adaptive choice between them and compressed frames, and blosc
// buffers and metadata as TensorStore writes them. (Real TensorStore reading them: tests/interop/orbax.)
#include <zstd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "cairn/error.h"
#include "zarr/blosc_codec.h"
#include "zarr/zarr_metadata.h"
#include "core/zstd.h"

namespace cairn::zarr {
namespace {

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Normal-ish bfloat16 values, like model weights: a compressible exponent byte, a random mantissa byte.
std::string BFloat16Weights(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::string s(count * 2, '\0');
  for (size_t i = 0; i < count; ++i) {
    float f = normal(rng);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    const uint16_t h = static_cast<uint16_t>(u >> 16);
    std::memcpy(&s[2 * i], &h, 2);
  }
  return s;
}

// libzstd's one-shot decoder, which checks the content size and checksum the frame declares.
std::string Decode(const std::string& frame, size_t size) {
  EXPECT_EQ(ZSTD_getFrameContentSize(frame.data(), frame.size()), size);
  std::string out(size, '\0');
  const size_t n = ZSTD_decompress(out.data(), out.size(), frame.data(), frame.size());
  EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  EXPECT_EQ(n, size);
  return out;
}

TEST(ZstdRawFrame, IsAValidFrameOfEverySize) {
  // Empty, one byte, exactly one block, a block and a byte, several blocks with a short last one.
  for (size_t n : {size_t{0}, size_t{1}, size_t{128} << 10, (size_t{128} << 10) + 1, size_t{3} << 19 | 77}) {
    const std::string data = RandomBytes(n, static_cast<uint32_t>(n));
    const std::string frame = ZstdRawFrame(data);
    EXPECT_LE(frame.size(), ZstdMaxFrameBytes(n));
    EXPECT_EQ(Decode(frame, n), data) << n;
    std::string out(n, '\0');
    ZstdDecompressInto(frame, out.data(), n, "t");  // cairn's streaming decoder too
    EXPECT_EQ(out, data);
  }
}

TEST(ZstdRawFrame, ItsChecksumCatchesAFlippedByte) {
  const std::string data = RandomBytes(300000, 7);
  std::string frame = ZstdRawFrame(data);
  frame[frame.size() / 2] ^= 0x10;
  std::string out(data.size(), '\0');
  EXPECT_THROW(ZstdDecompressInto(frame, out.data(), out.size(), "t"), CorruptionError);
}

TEST(ZstdAdaptive, StoresWhatDoesNotCompressInRawBlocks) {
  for (size_t n : {size_t{1000}, size_t{5} << 20}) {  // judged whole, and from a sample
    const std::string noise = RandomBytes(n, 3);
    ZstdChoice choice = ZstdChoice::kCompressed;
    const std::string frame = ZstdCompressAdaptive(noise, 1, &choice);
    EXPECT_EQ(choice, ZstdChoice::kRaw) << n;
    EXPECT_EQ(frame, ZstdRawFrame(noise));
    EXPECT_EQ(Decode(frame, n), noise);
  }
}

TEST(ZstdAdaptive, CompressesWhatPays) {
  for (size_t n : {size_t{1000}, size_t{5} << 20}) {
    std::string zeros(n, '\0');
    ZstdChoice choice = ZstdChoice::kRaw;
    const std::string frame = ZstdCompressAdaptive(zeros, 1, &choice);
    EXPECT_EQ(choice, ZstdChoice::kCompressed) << n;
    EXPECT_LT(frame.size(), n / 10);
    EXPECT_EQ(Decode(frame, n), zeros);
  }
  // bfloat16 weights save ~20% with zstd(1): above the 10% bar, so compressed.
  const std::string weights = BFloat16Weights(size_t{2} << 20, 5);
  ZstdChoice choice = ZstdChoice::kRaw;
  const std::string frame = ZstdCompressAdaptive(weights, 1, &choice);
  EXPECT_EQ(choice, ZstdChoice::kCompressed);
  EXPECT_LT(frame.size(), weights.size() * 0.9);
  EXPECT_EQ(Decode(frame, weights.size()), weights);
  // The bar is the caller's: asking for 50% stores them raw.
  EXPECT_EQ(ZstdCompressAdaptive(weights, 1, &choice, 0.5), ZstdRawFrame(weights));
  EXPECT_EQ(choice, ZstdChoice::kRaw);
}

TEST(ZstdAdaptive, AChunkCompressibleOnlyInPartsIsJudgedOverItsLength) {
  // Zeros in the first quarter, noise after: the sample spans the whole chunk, so it sees mostly noise and the
  // savings (~25%) are still found.
  std::string data = RandomBytes(size_t{8} << 20, 11);
  std::memset(data.data(), 0, data.size() / 4);
  ZstdChoice choice = ZstdChoice::kRaw;
  const std::string frame = ZstdCompressAdaptive(data, 1, &choice);
  EXPECT_EQ(choice, ZstdChoice::kCompressed);
  EXPECT_EQ(Decode(frame, data.size()), data);
}

TEST(Blosc, RoundTripsAndRejectsDamage) {
  const std::string weights = BFloat16Weights(100000, 9);
  for (const char* cname : {"lz4", "zstd"}) {
    BloscConfig config;
    config.cname = cname;
    const std::string stored = BloscCompress(weights, config, 2);
    EXPECT_LT(stored.size(), weights.size());  // byte shuffle makes the exponent bytes compress
    EXPECT_LE(stored.size(), BloscMaxBytes(weights.size()));
    std::string out(weights.size(), '\0');
    BloscDecompressInto(stored, out.data(), out.size(), "t");
    EXPECT_EQ(out, weights);
    std::string small(weights.size() - 1, '\0');
    EXPECT_THROW(BloscDecompressInto(stored, small.data(), small.size(), "t"), CorruptionError);
    EXPECT_THROW(BloscDecompressInto(stored.substr(0, stored.size() / 2), out.data(), out.size(), "t"),
                 CorruptionError);
    EXPECT_THROW(BloscDecompressInto(stored.substr(0, 8), out.data(), out.size(), "t"), CorruptionError);
  }
  BloscConfig unknown;
  unknown.cname = "nope";
  EXPECT_THROW(BloscCompress(weights, unknown, 2), InvalidArgumentError);
}

TEST(BloscMetadata, BytesMatchTensorStore) {
  // As TensorStore 0.1.86 writes {"id": "blosc"} (v2) and a "blosc" codec (zarr3) with its defaults.
  ZarrMetadata m;
  m.dtype = DType::kFloat32;
  m.shape = {4, 6};
  m.chunks = {4, 6};
  m.blosc = BloscConfig{};
  m.blosc->shuffle = -1;
  const std::string v2 = EncodeZarrMetadata(m);
  EXPECT_EQ(v2,
            R"({"chunks":[4,6],"compressor":{"blocksize":0,"clevel":5,"cname":"lz4","id":"blosc","shuffle":-1},"dimension_separator":".","dtype":"<f4","fill_value":null,"filters":null,"order":"C","shape":[4,6],"zarr_format":2})");
  EXPECT_EQ(DecodeZarrV2Metadata(v2, "t").blosc, m.blosc);
  m.format = ZarrFormat::kV3;
  m.zarr3_sharded = false;
  m.blosc->shuffle = 1;
  m.blosc->typesize = 4;
  const std::string v3 = EncodeZarrMetadata(m);
  EXPECT_EQ(v3,
            R"({"chunk_grid":{"configuration":{"chunk_shape":[4,6]},"name":"regular"},"chunk_key_encoding":{"name":"default"},"codecs":[{"configuration":{"endian":"little"},"name":"bytes"},{"configuration":{"blocksize":0,"clevel":5,"cname":"lz4","shuffle":"shuffle","typesize":4},"name":"blosc"}],"data_type":"float32","fill_value":0.0,"node_type":"array","shape":[4,6],"zarr_format":3})");
  EXPECT_EQ(DecodeZarr3Metadata(v3, "t").blosc, m.blosc);
  EXPECT_EQ(m.CompressionName(), "blosc(lz4, 5, byte shuffle)");
}

}  // namespace
}  // namespace cairn::zarr
