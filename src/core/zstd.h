// The one zstd wrapper: zarr's chunks (one frame per chunk) and OCDBT's compressed manifests and B+tree nodes.
// Decoding streams, because TensorStore's zarr v2 frames carry no content size (tensorstore#182), and checks the
// decoded size against what the caller says the bytes must hold.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace cairn {

// The most a frame of `content_bytes` bytes can take, as any zstd encoder writes it (zstd's worst-case bound, plus
// room for a content checksum): a stored chunk longer than this is not one.
size_t ZstdMaxFrameBytes(size_t content_bytes);

// Whether libzstd accepts `level` (ZSTD_minCLevel() to ZSTD_maxCLevel(); negative levels are its fast modes): an OCDBT
// writer's option and a manifest's recorded level are both held to it.
bool ZstdLevelInRange(int level);

// One frame with its content size and, with `content_checksum`, a checksum of the content (zarr's chunks have one;
// OCDBT's objects, as TensorStore writes them, do not).
std::string ZstdCompress(std::string_view data, int level, bool content_checksum = true);
// A chunk is written compressed only where zstd saves at least this fraction of its bytes. Below it, compressing
// costs more than it saves: zstd(1) runs at ~0.2-0.4 GB/s a core and decodes at ~0.3-1 GB/s, where a write
// costs ~1 ns/byte and a copy ~0.1; the numbers behind the choice are in docs/format.md ("Compression").
constexpr double kZstdMinSavings = 0.10;

// What ZstdCompressAdaptive did with a chunk.
enum class ZstdChoice { kCompressed, kRaw };

// One frame of `data`, as ZstdCompress writes it where compression pays, and otherwise a frame of raw blocks
// (ZstdRawFrame). Large chunks are judged from a sample (a few blocks spread over the chunk), small ones by
// compressing them; a compressed frame is never kept when it is not smaller than the raw one.
std::string ZstdCompressAdaptive(std::string_view data, int level, ZstdChoice* choice = nullptr,
                                 double min_savings = kZstdMinSavings);

// One valid zstd frame holding `data` in raw (stored) blocks, with its content size and content checksum, as zstd
// itself writes a block that does not compress: any zstd decoder reads it, and it is written at memcpy speed.
// (libzstd has no call that stores without searching for matches, so the frame is written here, per RFC 8878.)
std::string ZstdRawFrame(std::string_view data);

// Decodes one or more concatenated frames into exactly `expected_size` bytes at `out`. Anything else (bad
// frame, too few or too many bytes) is a CorruptionError mentioning `what`.
void ZstdDecompressInto(std::string_view frame, char* out, size_t expected_size, const std::string& what);

// ZstdDecompressInto for frames that arrive in pieces (a large chunk read a few MiB at a time, so that a restore
// holds a piece of it besides its destination, not all of it, and decodes it while it is still in cache). Feed()
// each piece in order, then Finish(). The same errors, each as soon as it shows: bad data and bytes beyond
// `expected_size` from Feed(), a truncated stream or too few bytes from Finish().
class ZstdDecoderInto {
 public:
  ZstdDecoderInto(char* out, size_t expected_size, std::string what);
  ~ZstdDecoderInto();
  ZstdDecoderInto(const ZstdDecoderInto&) = delete;
  ZstdDecoderInto& operator=(const ZstdDecoderInto&) = delete;

  void Feed(std::string_view piece);
  void Finish();

 private:
  struct Stream;
  std::unique_ptr<Stream> stream_;
};
// Decodes one or more concatenated frames whose decoded size nothing promises: the output grows as the stream
// produces bytes, and more than `max_bytes` is a CorruptionError mentioning `what`, detected without decoding the
// rest; so are a bad or truncated stream.
std::string ZstdDecompressBounded(std::string_view frames, size_t max_bytes, const std::string& what);

}  // namespace cairn
