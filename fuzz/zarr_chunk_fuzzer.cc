// One stored zarr chunk, decoded by ReadZarrRegion as a restore does: the input is the value of the chunk key of
// a fixed small array (int64, shape [2, 4], one chunk) in each stored form cairn reads: zarr v2 raw and zstd,
// zarr3 `sharding_indexed` shards (the shard index at the end: offset, length, CRC-32C) raw and zstd, and zarr3
// without sharding. Each form is read four ways: the exact chunk (decoded straight into the result), cast to
// float32, an interior box (v2 raw: a ranged read of part of the chunk) and a box reaching past the array
// (zero padding). The blosc forms (v2 and zarr3) are read the same ways.
//
// A shard is tried as given and with its index CRC recomputed, so that the fuzzer also gets past the CRC to the
// offset and length checks behind it.
#include <memory>
#include <string>

#include "cairn/file_system.h"
#include "fuzz_util.h"
#include "kvstore/directory_kvstore.h"
#include "zarr/zarr_array.h"

namespace {

using cairn::DType;
using cairn::Shape;
using cairn::zarr::ZarrFormat;
using cairn::zarr::ZarrMetadata;

ZarrMetadata Metadata(ZarrFormat format, bool zstd, bool sharded) {
  ZarrMetadata m;
  m.format = format;
  m.dtype = DType::kInt64;
  m.shape = {2, 4};
  m.chunks = {2, 4};
  if (zstd) m.zstd_level = format == ZarrFormat::kV2 ? 1 : 3;
  m.zarr3_sharded = sharded;
  return m;
}

void ReadEveryWay(const std::string& chunk, const ZarrMetadata& m) {
  auto fs = cairn::NewInMemoryFileSystem();
  fs->CreateDir("/a");
  cairn::kvstore::DirectoryKvStore store(fs, "/a");
  store.Write("p/" + m.ChunkKey({0, 0}), chunk);
  struct Request {
    Shape origin, shape;
    DType dtype;
  };
  const Request requests[] = {{{0, 0}, {2, 4}, DType::kInt64},
                              {{0, 0}, {2, 4}, DType::kFloat32},
                              {{1, 1}, {1, 2}, DType::kInt64},
                              {{-1, 0}, {3, 5}, DType::kInt64}};
  for (const Request& r : requests) {
    cairn::fuzz::IgnoreCairnErrors([&] { cairn::zarr::ReadZarrRegion(store, "p", m, r.origin, r.shape, r.dtype); });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string chunk(cairn::fuzz::AsBytes(data, size));
  for (bool zstd : {false, true}) {
    ReadEveryWay(chunk, Metadata(ZarrFormat::kV2, zstd, false));
    ReadEveryWay(chunk, Metadata(ZarrFormat::kV3, zstd, true));
    ReadEveryWay(chunk, Metadata(ZarrFormat::kV3, zstd, false));
  }
  // blosc (zarr v2 and zarr3), whose decoder trusts its header: cairn checks the header against the bytes first.
  for (ZarrFormat format : {ZarrFormat::kV2, ZarrFormat::kV3}) {
    ZarrMetadata m = Metadata(format, false, false);
    m.blosc = cairn::zarr::BloscConfig{};
    ReadEveryWay(chunk, m);
  }
  constexpr size_t kIndexBytes = 16 + 4;  // offset:u64 LE, length:u64 LE, crc32c:u32 LE
  if (chunk.size() >= kIndexBytes) {
    std::string repaired = chunk;
    char* index = repaired.data() + repaired.size() - kIndexBytes;
    cairn::fuzz::StoreU32LE(index + 16, cairn::Crc32c(std::string_view(index, 16)));
    for (bool zstd : {false, true}) ReadEveryWay(repaired, Metadata(ZarrFormat::kV3, zstd, true));
  }
  return 0;
}
