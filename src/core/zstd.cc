#include "core/zstd.h"

#include <xxhash.h>
#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_d_stableOutBuffer (experimental in 1.5, there since 1.4.4)
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "cairn/error.h"
#include "core/little_endian.h"

namespace cairn {

size_t ZstdMaxFrameBytes(size_t content_bytes) { return ZSTD_compressBound(content_bytes) + 64; }

bool ZstdLevelInRange(int level) { return level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel(); }


namespace {

using CCtxPtr = std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)>;

// One compression context per thread, reused: a context at level 1 holds ~1 MiB of tables, and chunks of a few KiB
// would otherwise pay for its allocation each time.
ZSTD_CCtx* ThreadContext() {
  thread_local CCtxPtr context(ZSTD_createCCtx(), ZSTD_freeCCtx);
  if (!context) throw std::bad_alloc();
  ZSTD_CCtx_reset(context.get(), ZSTD_reset_session_and_parameters);
  return context.get();
}

// zstd's largest block (RFC 8878, Block_Maximum_Size), and the window the raw frames declare: raw blocks refer to
// nothing before them, so the smallest window that allows full blocks keeps decoders' buffers small.
constexpr size_t kMaxBlock = size_t{128} << 10;
constexpr size_t kSamplePieces = 8;
constexpr size_t kSamplePieceBytes = kMaxBlock / 2;  // 64 KiB: 512 KiB sampled in all
// Chunks up to this size are compressed whole to decide: a sample would save little.
constexpr size_t kSampleAboveBytes = 4 * kSamplePieces * kSamplePieceBytes;


std::string CompressWith(ZSTD_CCtx* context, std::string_view data, int level, bool content_checksum = true) {
  ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, content_checksum ? 1 : 0);
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress2(context, out.data(), out.size(), data.data(), data.size());
  if (ZSTD_isError(n)) throw InvalidArgumentError(std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

}  // namespace

std::string ZstdCompress(std::string_view data, int level, bool content_checksum) {
  // One-shot compression records the content size in the frame header, as TensorStore's frames do. A checksum of
  // the content, which every zstd decoder verifies, reports a flipped byte instead of decoding it into wrong values.
  return CompressWith(ThreadContext(), data, level, content_checksum);
}

std::string ZstdRawFrame(std::string_view data) {
  const size_t n = data.size();
  const size_t blocks = std::max<size_t>(1, (n + kMaxBlock - 1) / kMaxBlock);
  constexpr size_t kHeader = 4 + 1 + 1 + 8;  // magic, descriptor, window, 8-byte content size
  const size_t total = kHeader + 3 * blocks + n + 4;
  std::string out;
  out.reserve(total + 32);  // room for a zarr3 shard index appended after the frame, without a reallocation
  out.resize(total);
  char* p = out.data();
  StoreLe(p, ZSTD_MAGICNUMBER, 4);
  // Frame_Header_Descriptor: Frame_Content_Size_flag 3 (8 bytes), Single_Segment_flag 0 (so a window descriptor
  // follows), Content_Checksum_flag 1, no dictionary.
  *p++ = static_cast<char>((3 << 6) | (1 << 2));
  // Window_Descriptor: Exponent 7, Mantissa 0, a 2^(10+7) = 128 KiB window.
  *p++ = static_cast<char>(7 << 3);
  StoreLe(p, n, 8);
  for (size_t b = 0, at = 0; b < blocks; ++b) {
    const size_t size = std::min(kMaxBlock, n - at);
    const bool last = b + 1 == blocks;
    // Block_Header (3 bytes, little-endian): Last_Block, Block_Type 0 (Raw_Block), Block_Size.
    StoreLe(p, (static_cast<uint32_t>(size) << 3) | (last ? 1u : 0u), 3);
    if (size) std::memcpy(p, data.data() + at, size);
    p += size;
    at += size;
  }
  // Content_Checksum: the low 32 bits of XXH64 of the content, seed 0.
  StoreLe(p, XXH64(data.data(), n, 0) & 0xffffffffu, 4);
  return out;
}

std::string ZstdCompressAdaptive(std::string_view data, int level, ZstdChoice* choice, double min_savings) {
  ZSTD_CCtx* context = ThreadContext();
  auto raw = [&] {
    if (choice) *choice = ZstdChoice::kRaw;
    return ZstdRawFrame(data);
  };
  if (data.size() > kSampleAboveBytes) {
    // Pieces spread evenly from the start to the end of the chunk, each compressed as a frame of its own (no
    // checksum): their total, against the sampled bytes, estimates what the whole chunk would save.
    ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 0);
    std::string scratch(ZSTD_compressBound(kSamplePieceBytes), '\0');
    size_t compressed = 0;
    const size_t stride = (data.size() - kSamplePieceBytes) / (kSamplePieces - 1);
    for (size_t i = 0; i < kSamplePieces; ++i) {
      const size_t n = ZSTD_compress2(context, scratch.data(), scratch.size(), data.data() + i * stride,
                                      kSamplePieceBytes);
      if (ZSTD_isError(n)) throw InvalidArgumentError(std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
      compressed += n;
    }
    const double sampled = static_cast<double>(kSamplePieces * kSamplePieceBytes);
    if (1.0 - static_cast<double>(compressed) / sampled < min_savings) return raw();
  }
  std::string frame = CompressWith(context, data, level);
  // Judged again on the whole (small chunks are judged only here): the raw frame is as good and reads faster.
  if (1.0 - static_cast<double>(frame.size()) / static_cast<double>(std::max<size_t>(data.size(), 1)) < min_savings) {
    return raw();
  }
  if (choice) *choice = ZstdChoice::kCompressed;
  return frame;
}

struct ZstdDecoderInto::Stream {
  std::unique_ptr<ZSTD_DStream, decltype(&ZSTD_freeDStream)> dstream{ZSTD_createDStream(), ZSTD_freeDStream};
  ZSTD_outBuffer output;
  size_t expected_size;
  std::string what;
  size_t rc = 1;  // nonzero: a frame is still open (or none has started)
};

ZstdDecoderInto::ZstdDecoderInto(char* out, size_t expected_size, std::string what)
    : stream_(new Stream{.output = {out, expected_size, 0}, .expected_size = expected_size, .what = std::move(what)}) {
  if (!stream_->dstream) throw std::bad_alloc();
  // The destination is the decoder's window: without this, a frame fed in pieces is decoded through a buffer of
  // its window size first, which for a single-segment frame (zstd's own, ZstdRawFrame's) is the whole chunk.
  size_t rc = ZSTD_DCtx_setParameter(stream_->dstream.get(), ZSTD_d_stableOutBuffer, 1);
  if (ZSTD_isError(rc)) throw std::runtime_error(std::string("zstd: stable output buffer: ") + ZSTD_getErrorName(rc));
  // Any window a writer chose (zstd --long=31, a stream compressed without its size known): the destination is
  // the window, so a large one costs no memory here, where zstd's default limit (128 MiB) would refuse the frame.
  rc = ZSTD_DCtx_setParameter(stream_->dstream.get(), ZSTD_d_windowLogMax, ZSTD_WINDOWLOG_MAX);
  if (ZSTD_isError(rc)) throw std::runtime_error(std::string("zstd: window limit: ") + ZSTD_getErrorName(rc));
}

ZstdDecoderInto::~ZstdDecoderInto() = default;

void ZstdDecoderInto::Feed(std::string_view piece) {
  Stream& s = *stream_;
  ZSTD_inBuffer in{piece.data(), piece.size(), 0};
  while (in.pos < in.size) {
    s.rc = ZSTD_decompressStream(s.dstream.get(), &s.output, &in);
    if (ZSTD_getErrorCode(s.rc) == ZSTD_error_dstSize_tooSmall) {  // the frames go on past the destination
      throw CorruptionError(s.what + ": zstd data decodes to more than the expected " +
                            std::to_string(s.expected_size) + " bytes");
    }
    if (ZSTD_isError(s.rc)) {
      throw CorruptionError(s.what + ": zstd data does not decode (" + ZSTD_getErrorName(s.rc) + ")");
    }
  }
}

void ZstdDecoderInto::Finish() {
  const Stream& s = *stream_;
  if (s.rc != 0) throw CorruptionError(s.what + ": zstd data is truncated");
  if (s.output.pos != s.expected_size) {
    throw CorruptionError(s.what + ": zstd data decodes to " + std::to_string(s.output.pos) + " bytes, expected " +
                          std::to_string(s.expected_size));
  }
}

void ZstdDecompressInto(std::string_view frame, char* out, size_t expected_size, const std::string& what) {
  ZstdDecoderInto decoder(out, expected_size, what);
  decoder.Feed(frame);
  decoder.Finish();
}

std::string ZstdDecompressBounded(std::string_view frames, size_t max_bytes, const std::string& what) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!ctx) throw std::bad_alloc();
  std::string out;
  ZSTD_inBuffer in{frames.data(), frames.size(), 0};
  size_t last = 1;  // non-zero: no frame completed yet
  const size_t piece = ZSTD_DStreamOutSize();
  auto too_large = [&] {
    return CorruptionError(what + ": zstd data decodes to more than " + std::to_string(max_bytes) + " bytes");
  };
  while (true) {
    const size_t old_size = out.size();
    if (old_size >= max_bytes + 1) throw too_large();
    // Ask for at most one byte past the cap, so an oversized stream is detected without decoding it all.
    const size_t grow = std::min(piece, max_bytes + 1 - old_size);
    out.resize(old_size + grow);
    ZSTD_outBuffer ob{out.data() + old_size, grow, 0};
    const size_t in_before = in.pos;
    last = ZSTD_decompressStream(ctx.get(), &ob, &in);
    out.resize(old_size + ob.pos);
    if (ZSTD_isError(last)) {
      throw CorruptionError(what + ": zstd data does not decode (" + ZSTD_getErrorName(last) + ")");
    }
    if (out.size() > max_bytes) throw too_large();
    // All input consumed and output room left over: the decoder has flushed everything it holds.
    if (in.pos == in.size && ob.pos < grow) break;
    if (ob.pos == 0 && in.pos == in_before) throw CorruptionError(what + ": zstd data makes no progress");
  }
  if (last != 0) throw CorruptionError(what + ": zstd data is truncated");
  return out;
}

}  // namespace cairn
