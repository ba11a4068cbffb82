#include "zarr/zarr_array.h"

#include <gtest/gtest.h>
#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_getFrameHeader, to check the frame the test makes
#include <zstd.h>

#include "cairn/error.h"
#include "kvstore/checksummed_kvstore.h"
#include "kvstore/directory_kvstore.h"
#include "test_util.h"
#include "zarr/chunk_shape.h"
#include "core/zstd.h"

namespace cairn::zarr {
namespace {

using cairn::testing::Iota;

// The compressors a test runs with: none, zstd, blosc lz4 and blosc zstd (byte shuffle).
enum class Codec { kRaw, kZstd, kBloscLz4, kBloscZstd };
const char* const kCodecNames[] = {"Raw", "Zstd", "BloscLz4", "BloscZstd"};

class ZarrArrayTest : public ::testing::TestWithParam<std::tuple<ZarrFormat, Codec>> {
 protected:
  ZarrArrayTest() : fs_(NewInMemoryFileSystem()), store_(fs_, "/item") { fs_->CreateDir("/item"); }
  ZarrMetadata Meta(DType dtype, Shape shape, Shape chunks) {
    ZarrMetadata m;
    m.format = std::get<0>(GetParam());
    m.dtype = dtype;
    m.shape = std::move(shape);
    m.chunks = std::move(chunks);
    const Codec codec = std::get<1>(GetParam());
    if (codec == Codec::kZstd) m.zstd_level = m.format == ZarrFormat::kV2 ? 1 : 3;
    if (codec == Codec::kBloscLz4 || codec == Codec::kBloscZstd) {
      m.blosc = BloscConfig{};
      m.blosc->cname = codec == Codec::kBloscLz4 ? "lz4" : "zstd";
      if (m.format == ZarrFormat::kV3) m.blosc->typesize = static_cast<int>(ItemSize(dtype));
    }
    return m;
  }
  std::shared_ptr<FileSystem> fs_;
  kvstore::DirectoryKvStore store_;
};

TEST_P(ZarrArrayTest, RoundTripWithEdgeChunks) {
  Array data = Iota({5, 7}, DType::kInt32);
  auto m = Meta(DType::kInt32, {5, 7}, {2, 3});
  WriteZarrArray(store_, "w", m, data);
  auto keys = store_.ListKeys("w/");
  EXPECT_EQ(keys.size(), 1u + 3 * 3);  // metadata + a 3x3 grid of chunks
  ZarrMetadata read = ReadZarrMetadata(store_, "w");
  EXPECT_EQ(read.shape, m.shape);
  EXPECT_EQ(read.chunks, m.chunks);
  EXPECT_EQ(read.zstd_level, m.zstd_level);
  EXPECT_EQ(read.blosc, m.blosc);
  EXPECT_EQ(ReadZarrRegion(store_, "w", read, {0, 0}, {5, 7}, DType::kInt32), data);
}

TEST_P(ZarrArrayTest, ManyChunksReadOnEveryCoreLandInPlace) {
  // 16 x 16 chunks, read in parallel (each worker with its own scratch): whole, cast, and a box cutting chunks.
  Array data = Iota({64, 48}, DType::kInt32);
  auto m = Meta(DType::kInt32, {64, 48}, {4, 3});
  WriteZarrArray(store_, "many", m, data);
  EXPECT_EQ(ReadZarrRegion(store_, "many", m, {0, 0}, {64, 48}, DType::kInt32), data);
  EXPECT_EQ(ReadZarrRegion(store_, "many", m, {0, 0}, {64, 48}, DType::kInt64), data.Cast(DType::kInt64));
  Array box = ReadZarrRegion(store_, "many", m, {5, 7}, {50, 30}, DType::kInt32);
  const auto b = box.data<int32_t>();
  for (int64_t r = 0; r < 50; ++r) {
    for (int64_t c = 0; c < 30; ++c) ASSERT_EQ(b[r * 30 + c], (r + 5) * 48 + (c + 7)) << r << "," << c;
  }
}

TEST_P(ZarrArrayTest, RegionsPadTruncateAndCast) {
  Array data = Iota({4, 4}, DType::kFloat32);
  auto m = Meta(DType::kFloat32, {4, 4}, {3, 3});
  WriteZarrArray(store_, "x", m, data);
  // Grow to 5x6: stored values at the low end, zeros beyond.
  Array padded = ReadZarrRegion(store_, "x", m, {0, 0}, {5, 6}, DType::kFloat64);
  auto p = padded.data<double>();
  EXPECT_EQ(p[0 * 6 + 3], 3.0);
  EXPECT_EQ(p[3 * 6 + 3], 15.0);
  EXPECT_EQ(p[0 * 6 + 4], 0.0);
  EXPECT_EQ(p[4 * 6 + 0], 0.0);
  // Shrink to 2x3.
  Array cut = ReadZarrRegion(store_, "x", m, {0, 0}, {2, 3}, DType::kFloat32);
  EXPECT_EQ(cut, Array::FromVector<float>({2, 3}, {0, 1, 2, 4, 5, 6}));
  // An interior box.
  Array box = ReadZarrRegion(store_, "x", m, {1, 2}, {2, 2}, DType::kFloat32);
  EXPECT_EQ(box, Array::FromVector<float>({2, 2}, {6, 7, 10, 11}));
}

TEST_P(ZarrArrayTest, ReadIntoTheCallersMemory) {
  // Chunked along the first axis (chunks land straight in place), chunked both ways (through scratch), cast in
  // place, a box cutting chunks, and a box past the edge (zero padding): every element of the caller's buffer is
  // written, whatever it held before.
  Array data = Iota({12, 6}, DType::kInt32);
  auto rows = Meta(DType::kInt32, {12, 6}, {4, 6});
  auto tiles = Meta(DType::kInt32, {12, 6}, {5, 4});
  WriteZarrArray(store_, "rows", rows, data);
  WriteZarrArray(store_, "tiles", tiles, data);
  for (const auto& [param, m] : {std::pair{"rows", rows}, std::pair{"tiles", tiles}}) {
    std::vector<int32_t> mine(12 * 6, -7);
    Array out = Array::FromBorrowedWritable(mine.data(), DType::kInt32, {12, 6});
    ReadZarrRegionInto(store_, param, m, {0, 0}, {12, 6}, out);
    EXPECT_EQ(out.bytes().data(), reinterpret_cast<const std::byte*>(mine.data()));
    EXPECT_EQ(out, data) << param;

    std::vector<double> wide(12 * 6, -7);
    Array cast = Array::FromBorrowedWritable(wide.data(), DType::kFloat64, {12, 6});
    ReadZarrRegionInto(store_, param, m, {0, 0}, {12, 6}, cast);
    EXPECT_EQ(cast, data.Cast(DType::kFloat64)) << param;

    std::vector<int32_t> box(5 * 3, -7);
    Array b = Array::FromBorrowedWritable(box.data(), DType::kInt32, {5, 3});
    ReadZarrRegionInto(store_, param, m, {3, 2}, {5, 3}, b);
    for (int r = 0; r < 5; ++r) {
      for (int c = 0; c < 3; ++c) ASSERT_EQ(box[r * 3 + c], (r + 3) * 6 + (c + 2)) << param << r << "," << c;
    }

    std::vector<int32_t> edge(4 * 4, -7);
    Array e = Array::FromBorrowedWritable(edge.data(), DType::kInt32, {4, 4});
    ReadZarrRegionInto(store_, param, m, {10, 4}, {4, 4}, e);
    for (int r = 0; r < 4; ++r) {
      for (int c = 0; c < 4; ++c) {
        ASSERT_EQ(edge[r * 4 + c], r < 2 && c < 2 ? (r + 10) * 6 + (c + 4) : 0) << param << r << "," << c;
      }
    }
  }
}

TEST_P(ZarrArrayTest, ReadIntoRefusesReadOnlyOrMisshapenDestinations) {
  auto m = Meta(DType::kInt32, {4, 4}, {4, 4});
  WriteZarrArray(store_, "x", m, Iota({4, 4}, DType::kInt32));
  std::vector<int32_t> mine(16, -7);
  Array read_only = Array::FromBorrowed(mine.data(), DType::kInt32, {4, 4});
  EXPECT_THROW(ReadZarrRegionInto(store_, "x", m, {0, 0}, {4, 4}, read_only), InvalidArgumentError);
  Array wrong = Array::FromBorrowedWritable(mine.data(), DType::kInt32, {2, 8});
  EXPECT_THROW(ReadZarrRegionInto(store_, "x", m, {0, 0}, {4, 4}, wrong), InvalidArgumentError);
  EXPECT_EQ(mine, std::vector<int32_t>(16, -7));
}

TEST_P(ZarrArrayTest, ScalarsAndEmptyArrays) {
  Array scalar = Array::FromScalar<int64_t>(-5);
  auto m = Meta(DType::kInt64, {}, {});
  WriteZarrArray(store_, "s", m, scalar);
  EXPECT_TRUE(store_.Read(m.format == ZarrFormat::kV2 ? "s/0" : "s/c"));
  EXPECT_EQ(ReadZarrRegion(store_, "s", m, {}, {}, DType::kInt64), scalar);

  Array empty = Array::Zeros(DType::kFloat32, {0, 3});
  auto e = Meta(DType::kFloat32, {0, 3}, ChooseChunkShape({0, 3}, {0, 3}, DType::kFloat32, std::nullopt));
  WriteZarrArray(store_, "e", e, empty);
  EXPECT_EQ(ReadZarrRegion(store_, "e", ReadZarrMetadata(store_, "e"), {0, 0}, {0, 3}, DType::kFloat32), empty);
}

TEST_P(ZarrArrayTest, MissingOrCorruptChunksAreErrors) {
  Array data = Iota({6}, DType::kInt16);
  auto m = Meta(DType::kInt16, {6}, {3});
  WriteZarrArray(store_, "c", m, data);
  std::string key = m.format == ZarrFormat::kV2 ? "c/1" : "c/c/1";
  std::string good = *store_.Read(key);
  fs_->WriteFile(std::filesystem::path("/item") / key, good.substr(0, good.size() - 3));
  EXPECT_THROW(ReadZarrRegion(store_, "c", m, {0}, {6}, DType::kInt16), CorruptionError);
  fs_->RemoveFile(std::filesystem::path("/item") / key);
  try {
    ReadZarrRegion(store_, "c", m, {0}, {6}, DType::kInt16);
    FAIL();
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
  }
  // Only the overlapping chunk is read: the first half still restores.
  EXPECT_EQ(ReadZarrRegion(store_, "c", m, {0}, {3}, DType::kInt16), Iota({3}, DType::kInt16));
}

INSTANTIATE_TEST_SUITE_P(Formats, ZarrArrayTest,
                         ::testing::Combine(::testing::Values(ZarrFormat::kV2, ZarrFormat::kV3),
                                            ::testing::Values(Codec::kRaw, Codec::kZstd, Codec::kBloscLz4,
                                                              Codec::kBloscZstd)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == ZarrFormat::kV2 ? "V2" : "Zarr3") +
                                  kCodecNames[static_cast<int>(std::get<1>(info.param))];
                         });

TEST(ZarrMetadata, V2BytesMatchTensorStore) {
  ZarrMetadata m;
  m.dtype = DType::kInt32;
  m.shape = {8};
  m.chunks = {8};
  m.zstd_level = 1;
  EXPECT_EQ(EncodeZarrMetadata(m),
            R"({"chunks":[8],"compressor":{"id":"zstd","level":1},"dimension_separator":".","dtype":"<i4","fill_value":null,"filters":null,"order":"C","shape":[8],"zarr_format":2})");
  m.zstd_level.reset();
  m.dtype = DType::kBFloat16;
  EXPECT_NE(EncodeZarrMetadata(m).find(R"("compressor":null)"), std::string::npos);
  EXPECT_NE(EncodeZarrMetadata(m).find(R"("dtype":"bfloat16")"), std::string::npos);
}

TEST(ZarrMetadata, ReadsTheLegacyFixture) {
  auto fs = FileSystem::Default();
  auto dir = cairn::testing::FixturesDir() / "zarr_v2/aggregate_some.checkpoint";
  kvstore::DirectoryKvStore store(fs, dir);
  ZarrMetadata m = ReadZarrMetadata(store, "a");
  EXPECT_EQ(m.dtype, DType::kInt64);
  EXPECT_EQ(m.shape, (Shape{8}));
  // The fixture's zstd frames carry no content size: streaming decode must handle them.
  Array a = ReadZarrRegion(store, "a", m, {0}, m.shape, DType::kInt64);
  EXPECT_EQ(a, Array::FromVector<int64_t>({8}, {0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(ZarrMetadata, RejectsMalformedAndUnsupported) {
  EXPECT_THROW(DecodeZarrV2Metadata("not json", "x"), CorruptionError);
  EXPECT_THROW(DecodeZarrV2Metadata(R"({"zarr_format":2,"dtype":"<f4","shape":[2],"chunks":[0]})", "x"),
               CorruptionError);
  EXPECT_THROW(DecodeZarrV2Metadata(R"({"zarr_format":2,"dtype":"<f4","shape":[2],"chunks":[2,2]})", "x"),
               CorruptionError);
  EXPECT_THROW(DecodeZarrV2Metadata(
                   R"({"zarr_format":2,"dtype":"<f4","shape":[2],"chunks":[2],"compressor":{"id":"gzip"}})", "x"),
               UnimplementedError);
  EXPECT_THROW(DecodeZarrV2Metadata(
                   R"({"zarr_format":2,"dtype":"<f4","shape":[2],"chunks":[2],"compressor":{"id":"blosc","cname":"nope"}})",
                   "x"),
               UnimplementedError);
  EXPECT_THROW(DecodeZarrV2Metadata(
                   R"({"zarr_format":2,"dtype":"<f4","shape":[2],"chunks":[2],"compressor":{"id":"blosc","shuffle":7}})",
                   "x"),
               CorruptionError);
  EXPECT_THROW(DecodeZarrV2Metadata(R"({"zarr_format":2,"dtype":"<f4","shape":[2],"chunks":[2],"order":"F"})", "x"),
               UnimplementedError);
  EXPECT_THROW(DecodeZarrV2Metadata(
                   R"({"zarr_format":2,"dtype":"<f4","shape":[4611686018427387904,4],"chunks":[1,1]})", "x"),
               InvalidArgumentError);
}

TEST(ChunkShape, OrbaxChoice) {
  // No target: the write shape.
  EXPECT_EQ(ChooseChunkShape({8, 6}, {8, 6}, DType::kFloat32, std::nullopt), (Shape{8, 6}));
  // Largest dimension shrinks to its next divisor until the chunk fits.
  EXPECT_EQ(ChooseChunkShape({8, 6}, {8, 6}, DType::kFloat32, 4 * 24), (Shape{4, 6}));
  EXPECT_EQ(ChooseChunkShape({8, 6}, {8, 6}, DType::kFloat32, 4 * 12), (Shape{4, 3}));
  // Sharded dimensions (write shape smaller than global) shrink first.
  EXPECT_EQ(ChooseChunkShape({16, 6}, {8, 6}, DType::kFloat32, 4 * 12), (Shape{2, 6}));
  EXPECT_EQ(ChooseChunkShape({0, 3}, {0, 3}, DType::kFloat32, std::nullopt), (Shape{1, 3}));
  EXPECT_EQ(ChooseChunkShape({7}, {7}, DType::kInt8, 2), (Shape{1}));
}

TEST(Zstd, StreamsFramesWithoutContentSize) {
  std::string raw(100000, 'x');
  std::string frame = ZstdCompress(raw, 1);
  std::string out(raw.size(), '\0');
  ZstdDecompressInto(frame, out.data(), out.size(), "t");
  EXPECT_EQ(out, raw);
  std::string small(10, '\0');
  EXPECT_THROW(ZstdDecompressInto(frame, small.data(), small.size(), "t"), CorruptionError);
  std::string big(raw.size() + 1, '\0');
  EXPECT_THROW(ZstdDecompressInto(frame, big.data(), big.size(), "t"), CorruptionError);
  EXPECT_THROW(ZstdDecompressInto("garbage", out.data(), out.size(), "t"), CorruptionError);
  EXPECT_THROW(ZstdDecompressInto(frame.substr(0, frame.size() / 2), out.data(), out.size(), "t"), CorruptionError);
}

TEST(Zstd, DecodesFramesFedInPieces) {
  std::string raw(1 << 20, '\0');
  uint64_t x = 1;
  for (size_t i = 0; i < raw.size(); ++i) {
    x = x * 6364136223846793005u + 1442695040888963407u;
    raw[i] = i < raw.size() / 2 ? static_cast<char>(x >> 56) : static_cast<char>(i / 1000);  // noise, then runs
  }
  // Two concatenated frames, as a reader may meet them: a compressed one and one of raw blocks.
  const std::string half1 = raw.substr(0, raw.size() / 2), half2 = raw.substr(raw.size() / 2);
  const std::string frames = ZstdRawFrame(half1) + ZstdCompress(half2, 3);
  for (size_t piece : {size_t{1} << 20, size_t{4096}, size_t{7}, frames.size()}) {
    std::string out(raw.size(), '\0');
    ZstdDecoderInto decoder(out.data(), out.size(), "t");
    for (size_t at = 0; at < frames.size(); at += piece) decoder.Feed(std::string_view(frames).substr(at, piece));
    decoder.Finish();
    EXPECT_EQ(out, raw) << piece;
  }
  std::string out(raw.size(), '\0');
  {  // truncated: only Finish can tell
    ZstdDecoderInto decoder(out.data(), out.size(), "t");
    decoder.Feed(std::string_view(frames).substr(0, frames.size() - 100));
    EXPECT_THROW(decoder.Finish(), CorruptionError);
  }
  {  // more than the destination holds: the piece that brings it
    std::string small(raw.size() / 2 + 10, '\0');
    ZstdDecoderInto decoder(small.data(), small.size(), "t");
    EXPECT_THROW(decoder.Feed(frames), CorruptionError);
  }
  {  // garbage in a later piece
    std::string bad = frames;
    for (size_t i = bad.size() - 2000; i < bad.size() - 1000; ++i) bad[i] = '\x5a';
    ZstdDecoderInto decoder(out.data(), out.size(), "t");
    EXPECT_THROW(
        {
          for (size_t at = 0; at < bad.size(); at += 4096) decoder.Feed(std::string_view(bad).substr(at, 4096));
          decoder.Finish();
        },
        CorruptionError);
  }
}

// A frame whose header asks for a window past zstd's default limit (128 MiB): written by a stream that did not
// know its size, with a 256 MiB window (as zstd --long=28 would). It decodes, in pieces and whole.
TEST(Zstd, DecodesFramesWithWindowsPastTheDefaultLimit) {
  std::string raw(1 << 20, '\0');
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>((i * 7) / 1000);
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  ASSERT_FALSE(ZSTD_isError(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_windowLog, 28)));
  ASSERT_FALSE(ZSTD_isError(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 0)));
  std::string frame(ZSTD_compressBound(raw.size()) + 1024, '\0');
  ZSTD_outBuffer out_buffer{frame.data(), frame.size(), 0};
  ZSTD_inBuffer first{raw.data(), raw.size() / 2, 0};  // fed in two parts: the size is not known at the start
  ASSERT_FALSE(ZSTD_isError(ZSTD_compressStream2(cctx.get(), &out_buffer, &first, ZSTD_e_continue)));
  ASSERT_EQ(first.pos, first.size);
  ZSTD_inBuffer rest{raw.data() + raw.size() / 2, raw.size() - raw.size() / 2, 0};
  ASSERT_EQ(ZSTD_compressStream2(cctx.get(), &out_buffer, &rest, ZSTD_e_end), 0u);
  frame.resize(out_buffer.pos);
  ZSTD_frameHeader header;
  ASSERT_EQ(ZSTD_getFrameHeader(&header, frame.data(), frame.size()), 0u);
  ASSERT_GT(header.windowSize, uint64_t{1} << 27);  // what the default limit refuses
  for (size_t piece : {size_t{4096}, frame.size()}) {
    std::string out(raw.size(), '\0');
    ZstdDecoderInto decoder(out.data(), out.size(), "t");
    for (size_t at = 0; at < frame.size(); at += piece) decoder.Feed(std::string_view(frame).substr(at, piece));
    decoder.Finish();
    EXPECT_EQ(out, raw) << piece;
  }
}

// A store that passes every call to another one; the test stores below change what they need.
class ForwardingStore : public kvstore::KvStore {
 public:
  explicit ForwardingStore(kvstore::KvStore& inner) : inner_(inner) {}
  using KvStore::Read;
  std::optional<std::string> Read(std::string_view key, uint64_t max_bytes) override {
    return inner_.Read(key, max_bytes);
  }
  std::optional<std::string> ReadRange(std::string_view key, uint64_t offset, uint64_t length) override {
    return inner_.ReadRange(key, offset, length);
  }
  std::optional<uint64_t> ValueSize(std::string_view key) override { return inner_.ValueSize(key); }
  bool ReadsInPieces(std::string_view key) const override { return inner_.ReadsInPieces(key); }
  void Write(std::string_view key, std::string value) override { inner_.Write(key, std::move(value)); }
  std::vector<std::string> ListKeys(std::string_view prefix) override { return inner_.ListKeys(prefix); }
  void Flush() override { inner_.Flush(); }
  std::string Describe() const override { return inner_.Describe(); }
  std::string DescribeKey(std::string_view key) override { return inner_.DescribeKey(key); }

 protected:
  kvstore::KvStore& inner_;
};

// A store that counts how a chunk is read: whole, or in ranges.
class CountingReads final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  int whole = 0, ranges = 0;
  using KvStore::Read;
  std::optional<std::string> Read(std::string_view key, uint64_t max_bytes) override {
    whole += key.find(".zarray") == std::string_view::npos && key.find("zarr.json") == std::string_view::npos;
    return inner_.Read(key, max_bytes);
  }
  std::optional<std::string> ReadRange(std::string_view key, uint64_t offset, uint64_t length) override {
    ++ranges;
    return inner_.ReadRange(key, offset, length);
  }
};

// A store whose files shrink between the size lookup and the reads (as a file another process truncates).
class ShrinkingFiles final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::optional<uint64_t> ValueSize(std::string_view key) override {
    auto size = inner_.ValueSize(key);
    return size ? std::optional<uint64_t>(*size + (8 << 20)) : std::nullopt;
  }
};

// A float32 array of 20 MiB: half noise (stored raw by adaptive zstd), half smooth (compressed).
Array LargeMixedArray() {
  Array a = Array::Zeros(DType::kFloat32, {5 << 20});
  auto v = a.mutable_data<float>();
  uint64_t x = 7;
  for (size_t i = 0; i < v.size(); ++i) {
    x = x * 6364136223846793005u + 1442695040888963407u;
    v[i] = i < v.size() / 2 ? static_cast<float>(static_cast<int64_t>(x >> 40)) : static_cast<float>(i / 64);
  }
  return a;
}

TEST(LargeZstdChunks, AreDecodedPieceByPieceAsTheyAreRead) {
  for (ZarrFormat format : {ZarrFormat::kV2, ZarrFormat::kV3}) {
    auto fs = NewInMemoryFileSystem();
    fs->CreateDir("/item");
    kvstore::DirectoryKvStore dir(fs, "/item");
    ZarrMetadata m;
    m.format = format;
    m.zarr3_sharded = false;
    m.dtype = DType::kFloat32;
    m.shape = m.chunks = {5 << 20};
    m.zstd_level = 1;
    const Array data = LargeMixedArray();
    WriteZarrArray(dir, "big", m, data);
    CountingReads counting(dir);
    EXPECT_EQ(ReadZarrRegion(counting, "big", m, {0}, m.shape, DType::kFloat32), data);
    EXPECT_EQ(counting.whole, 0);
    EXPECT_GE(counting.ranges, 3);  // 4 MiB pieces of a value over 10 MiB
    ShrinkingFiles shrinking(dir);
    try {
      ReadZarrRegion(shrinking, "big", m, {0}, m.shape, DType::kFloat32);
      ADD_FAILURE() << "a chunk that shrank while read was decoded";
    } catch (const CorruptionError& e) {
      EXPECT_NE(std::string(e.what()).find("changed size while it was read"), std::string::npos) << e.what();
    }
    // A byte changed in a later piece: the decoder (or zstd's content checksum) refuses it, naming the file.
    const std::string key = format == ZarrFormat::kV2 ? "big/0" : "big/c/0";
    std::string stored = fs->ReadFile(std::filesystem::path("/item") / key);
    stored[stored.size() - 1000] ^= 0x40;
    fs->WriteFile(std::filesystem::path("/item") / key, stored);
    try {
      ReadZarrRegion(dir, "big", m, {0}, m.shape, DType::kFloat32);
      ADD_FAILURE() << "a damaged chunk was decoded";
    } catch (const CorruptionError& e) {
      EXPECT_NE(std::string(e.what()).find("/item/" + key), std::string::npos) << e.what();
    }
    fs->WriteFile(std::filesystem::path("/item") / key, stored.substr(0, stored.size() / 2));  // truncated
    EXPECT_THROW(ReadZarrRegion(dir, "big", m, {0}, m.shape, DType::kFloat32), CorruptionError);
  }
}

TEST(LargeZstdChunks, EveryPieceIsCheckedAgainstTheRecordedChecksums) {
  auto fs = NewInMemoryFileSystem();
  fs->CreateDir("/item");
  ZarrMetadata m;
  m.dtype = DType::kFloat32;
  m.shape = m.chunks = {5 << 20};
  m.zstd_level = 1;
  const Array data = LargeMixedArray();
  kvstore::ChecksummedKvStore writer(std::make_shared<kvstore::DirectoryKvStore>(fs, "/item"));
  WriteZarrArray(writer, "big", m, data);
  writer.Flush();
  kvstore::ChecksummedKvStore reader(std::make_shared<kvstore::DirectoryKvStore>(fs, "/item"), writer.recorded());
  EXPECT_EQ(ReadZarrRegion(reader, "big", m, {0}, m.shape, DType::kFloat32), data);
  {  // Only the whole value's CRC recorded (cairn before block CRCs): read whole and checked, not piece by piece.
    kvstore::ValueChecksums whole_only = writer.recorded();
    whole_only.blocks.clear();
    kvstore::ChecksummedKvStore old_reader(std::make_shared<kvstore::DirectoryKvStore>(fs, "/item"), whole_only);
    CountingReads counting(old_reader);
    EXPECT_EQ(ReadZarrRegion(counting, "big", m, {0}, m.shape, DType::kFloat32), data);
    EXPECT_EQ(counting.whole, 1);
    EXPECT_EQ(counting.ranges, 0);
  }
  std::string stored = fs->ReadFile("/item/big/0");
  stored[(5 << 20) + 12345] ^= 1;  // in the second piece
  fs->WriteFile("/item/big/0", stored);
  try {
    ReadZarrRegion(reader, "big", m, {0}, m.shape, DType::kFloat32);
    ADD_FAILURE() << "a damaged chunk was decoded";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("fail their CRC-32C check"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cairn::zarr
