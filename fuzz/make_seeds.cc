// Generates the seed corpora in fuzz/corpus/<target>/ (they are committed; this records where they came from):
//
//   build-fuzz/fuzz/cairn_fuzz_make_seeds tests/fixtures/orbax <empty dir>
//
// then replace the generated files in fuzz/corpus/ (keep the regress-* files: they reproduce fixed findings).
//
// Sources: the Orbax fixture checkpoints (metadata files, msgpack aggregates, OCDBT manifests, B+tree nodes and
// whole databases, and the zarr metadata and chunks stored in them), and what cairn itself writes (zarr metadata
// and chunks in every form, uncompressed OCDBT databases with several tree levels, out-of-line values, a merged
// database and a numbered manifest, a msgpack aggregate using every feature). Compressed OCDBT objects are also
// added uncompressed, so that mutations reach the parsers rather than zstd. Files are named <source>-<hash of the
// contents>. The OCDBT databases cairn writes hold random file ids, a uuid and a commit time, so those seeds differ
// from run to run.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST
#endif
#include <msgpack.hpp>
#include <zstd.h>

#include "cairn/array.h"
#include "cairn/file_system.h"
#include "cairn/sharding.h"
#include "cairn/step_metadata.h"
#include "fuzz_util.h"
#include "kvstore/directory_kvstore.h"
#include "kvstore/ocdbt/btree_node.h"
#include "kvstore/ocdbt/envelope.h"
#include "kvstore/ocdbt/manifest.h"
#include "kvstore/ocdbt/ocdbt.h"
#include "kvstore/ocdbt/reader.h"
#include "metadata/array_metadata.h"
#include "metadata/checkpoint_metadata.h"
#include "metadata/delta_record.h"
#include "metadata/tree_metadata.h"
#include "zarr/zarr_array.h"

namespace {

namespace fs = std::filesystem;
namespace ocdbt = cairn::kvstore::ocdbt;
using cairn::DType;
using cairn::zarr::ZarrFormat;
using cairn::zarr::ZarrMetadata;
using Files = std::vector<std::pair<std::string, std::string>>;

// At most this many files per target from one source kind, so the corpora stay a few KiB.
constexpr int kMaxPerSource = 6;
constexpr size_t kMaxSeedBytes = 8192;

std::string Hash(std::string_view bytes) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : bytes) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

class Corpus {
 public:
  explicit Corpus(fs::path root) : root_(std::move(root)) {}

  void Add(const std::string& target, const std::string& source, std::string_view bytes) {
    if (bytes.size() > kMaxSeedBytes) return;
    int& count = counts_[target + "/" + source];
    if (count >= kMaxPerSource) return;
    const std::string hash = Hash(bytes);
    if (!seen_.insert(target + "/" + hash).second) return;  // the same bytes from another source
    const fs::path dir = root_ / target;
    fs::create_directories(dir);
    const fs::path path = dir / (source + "-" + hash);
    if (fs::exists(path)) return;
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ++count;
    ++written_;
  }
  int written() const { return written_; }

 private:
  fs::path root_;
  std::map<std::string, int> counts_;
  std::set<std::string> seen_;
  int written_ = 0;
};

std::string ReadHostFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Every file below `dir` in `filesystem`, as (relative path, contents), sorted.
Files ListFiles(cairn::FileSystem& filesystem, const fs::path& dir, const std::string& prefix = "") {
  Files out;
  for (const std::string& name : filesystem.ListDir(dir)) {
    const fs::path path = dir / name;
    if (filesystem.IsDirectory(path)) {
      Files sub = ListFiles(filesystem, path, prefix + name + "/");
      out.insert(out.end(), sub.begin(), sub.end());
    } else {
      out.emplace_back(prefix + name, filesystem.ReadFile(path));
    }
  }
  return out;
}

bool IsOcdbtFile(const std::string& relative) {
  // manifest.ocdbt, manifest.<16 hex>, d/<id>, and the same below ocdbt.process_<i>/ of a merged database.
  std::string rest = relative;
  if (rest.rfind("ocdbt.process_", 0) == 0) {
    const size_t slash = rest.find('/');
    if (slash == std::string::npos) return false;
    rest = rest.substr(slash + 1);
  }
  return rest.rfind("manifest.", 0) == 0 || rest.rfind("d/", 0) == 0;
}

std::string Uncompressed(std::string_view encoded, uint32_t magic) {
  std::string body = ocdbt::DecodeEnvelope(encoded, magic, size_t{64} << 20, "seed");
  return ocdbt::EncodeEnvelope(magic, body, ocdbt::Compression{.zstd = false});
}

// Adds the manifest, every B+tree node, the zarr metadata and chunks, and the whole database in `dir`.
void AddDatabase(Corpus& corpus, const std::shared_ptr<cairn::FileSystem>& filesystem, const fs::path& dir,
                 const std::string& source) {
  Files files;
  for (auto& [path, contents] : ListFiles(*filesystem, dir)) {
    if (IsOcdbtFile(path)) files.emplace_back(path, contents);
  }
  corpus.Add("ocdbt_database", source, cairn::fuzz::JoinFiles(files));

  const std::string manifest = filesystem->ReadFile(dir / "manifest.ocdbt");
  corpus.Add("ocdbt_manifest", source, manifest);
  corpus.Add("ocdbt_manifest", source + "-raw", Uncompressed(manifest, ocdbt::kManifestMagic));

  cairn::kvstore::OcdbtReader reader(filesystem, dir);
  std::function<void(const ocdbt::IndirectRef&)> visit = [&](const ocdbt::IndirectRef& ref) {
    std::string encoded(ref.length, '\0');
    filesystem->OpenForRead(dir / ref.file.FullPath())->ReadAt(ref.offset, ref.length, encoded.data());
    corpus.Add("ocdbt_btree_node", source, encoded);
    corpus.Add("ocdbt_btree_node", source + "-raw", Uncompressed(encoded, ocdbt::kBtreeNodeMagic));
    ocdbt::BtreeNode node = ocdbt::DecodeBtreeNode(encoded, ref.file.base_path, size_t{64} << 20, "seed");
    for (const auto& entry : node.interior_entries) visit(entry.child);
  };
  if (reader.latest_version() && !reader.latest_version()->root.IsMissing()) visit(reader.latest_version()->root);

  for (const std::string& key : reader.ListKeys()) {
    const std::string value = *reader.Read(key);
    if (key.ends_with("/.zarray")) {
      corpus.Add("zarray", source, value);
    } else if (key.ends_with("/zarr.json")) {
      corpus.Add("zarr_json", source, value);
    } else {
      corpus.Add("zarr_chunk", source, value);
    }
  }
}

void AddFixtures(Corpus& corpus, const fs::path& fixtures) {
  std::vector<fs::path> paths;
  for (const auto& entry : fs::recursive_directory_iterator(fixtures)) {
    if (entry.is_regular_file()) paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  auto host = cairn::FileSystem::Default();
  for (const fs::path& path : paths) {
    const std::string name = path.filename().string();
    const std::string parent = path.parent_path().filename().string();
    const bool in_zarr_dir = fs::exists(path.parent_path() / ".zarray") || fs::exists(path.parent_path() / "zarr.json");
    if (name == "_METADATA") corpus.Add("tree_metadata", "orbax", ReadHostFile(path));
    if (name == "_CHECKPOINT_METADATA") corpus.Add("checkpoint_metadata", "orbax", ReadHostFile(path));
    if (name == "_sharding") corpus.Add("sharding", "orbax", ReadHostFile(path));
    if (parent == "array_metadatas") corpus.Add("array_metadatas", "orbax", ReadHostFile(path));
    if (name == "checkpoint" && fs::exists(path.parent_path() / "_METADATA")) {
      corpus.Add("legacy_aggregate", "orbax", ReadHostFile(path));
    }
    if (name == ".zarray") corpus.Add("zarray", "orbax", ReadHostFile(path));
    if (name == "zarr.json") corpus.Add("zarr_json", "orbax", ReadHostFile(path));
    if (in_zarr_dir && name != ".zarray" && name != "zarr.json") corpus.Add("zarr_chunk", "orbax", ReadHostFile(path));
    if (name == "manifest.ocdbt") {
      try {
        AddDatabase(corpus, host, path.parent_path(), "orbax");
      } catch (const cairn::Error& e) {
        // Some fixtures are damaged on purpose (a missing d/ or manifest): what was added before the error stays.
        std::cerr << "make_seeds: " << path.parent_path().string() << ": " << e.what() << "\n";
      }
    }
  }
}

// --- what cairn writes ---

ZarrMetadata ChunkTargetMetadata(ZarrFormat format, bool zstd, bool sharded) {
  // The fixed array of zarr_chunk_fuzzer.cc: int64, shape [2, 4], one chunk.
  ZarrMetadata m;
  m.format = format;
  m.dtype = DType::kInt64;
  m.shape = {2, 4};
  m.chunks = {2, 4};
  if (zstd) m.zstd_level = format == ZarrFormat::kV2 ? 1 : 3;
  m.zarr3_sharded = sharded;
  return m;
}

cairn::Array Int64Iota(cairn::Shape shape) {
  std::vector<int64_t> values(static_cast<size_t>(cairn::NumElements(shape)));
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int64_t>(i * 3) - 5;
  return cairn::Array::FromVector<int64_t>(std::move(shape), values);
}

void AddZarr(Corpus& corpus) {
  auto memory = cairn::NewInMemoryFileSystem();
  memory->CreateDir("/z");
  cairn::kvstore::DirectoryKvStore store(memory, "/z");
  int n = 0;
  for (ZarrFormat format : {ZarrFormat::kV2, ZarrFormat::kV3}) {
    for (bool zstd : {false, true}) {
      for (bool sharded : {true, false}) {
        if (format == ZarrFormat::kV2 && !sharded) continue;
        ZarrMetadata m = ChunkTargetMetadata(format, zstd, sharded);
        const std::string param = "p" + std::to_string(n++);
        cairn::zarr::WriteZarrArray(store, param, m, Int64Iota(m.shape));
        corpus.Add("zarr_chunk", "cairn", *store.Read(param + "/" + m.ChunkKey({0, 0})));
        corpus.Add(format == ZarrFormat::kV2 ? "zarray" : "zarr_json", "cairn", cairn::zarr::EncodeZarrMetadata(m));
      }
    }
  }
  // Other metadata forms: '/' separators, v2 chunk keys in zarr3, several chunks, a 0-d array, ML dtypes.
  ZarrMetadata v2;
  v2.dtype = DType::kBFloat16;
  v2.shape = {5, 7, 3};
  v2.chunks = {2, 7, 1};
  v2.dimension_separator = '/';
  corpus.Add("zarray", "cairn", cairn::zarr::EncodeZarrMetadata(v2));
  ZarrMetadata v3;
  v3.format = ZarrFormat::kV3;
  v3.dtype = DType::kFloat8E4M3FN;
  v3.zarr3_default_keys = false;
  v3.zarr3_sharded = false;
  v3.zstd_level = 5;
  corpus.Add("zarr_json", "cairn", cairn::zarr::EncodeZarrMetadata(v3));  // 0-d
}

void AddOcdbt(Corpus& corpus) {
  auto memory = cairn::NewInMemoryFileSystem();
  const cairn::kvstore::OcdbtWriterOptions raw{.max_inline_value_bytes = 16, .max_decoded_node_bytes = 160,
                                               .parallel_data_files = 1, .zstd = false};

  // Several levels of small nodes, inline and out-of-line values, zarr keys.
  {
    auto writer = cairn::kvstore::NewOcdbtWriter(memory, "/tree", raw);
    ZarrMetadata m = ChunkTargetMetadata(ZarrFormat::kV2, false, true);
    cairn::zarr::WriteZarrArray(*writer, "params.w", m, Int64Iota(m.shape));
    for (int i = 0; i < 12; ++i) {
      writer->Write("k/" + std::to_string(i * 37), std::string(static_cast<size_t>(i * 3), 'v'));
    }
    writer->Flush();
  }
  AddDatabase(corpus, memory, "/tree", "cairn");

  // The same database with a numbered manifest: a config-only manifest.ocdbt, the versions in manifest.<hex>.
  {
    const std::string single = memory->ReadFile("/tree/manifest.ocdbt");
    ocdbt::Manifest config_only = ocdbt::DecodeManifest(single, "seed");
    config_only.config.manifest_kind = ocdbt::ManifestKind::kNumbered;
    config_only.versions.clear();
    config_only.version_nodes.clear();
    Files files;
    for (auto& [path, contents] : ListFiles(*memory, "/tree")) {
      if (path == "manifest.ocdbt") {
        files.emplace_back("manifest.0000000000000001", contents);
        files.emplace_back(path, ocdbt::EncodeManifest(config_only));
      } else {
        files.emplace_back(path, contents);
      }
    }
    corpus.Add("ocdbt_database", "cairn-numbered", cairn::fuzz::JoinFiles(files));
    corpus.Add("ocdbt_manifest", "cairn-numbered", ocdbt::EncodeManifest(config_only));
  }

  // A merged database: the root's leaves refer to values in ocdbt.process_<i>/d/... through base paths.
  {
    for (int process = 0; process < 2; ++process) {
      auto writer = cairn::kvstore::NewOcdbtWriter(memory, "/merged/ocdbt.process_" + std::to_string(process), raw);
      const std::string p = "p" + std::to_string(process);
      writer->Write(p + "/.zarray", "{}");
      writer->Write(p + "/0", std::string(40, static_cast<char>('0' + process)));
      writer->Flush();
    }
    cairn::kvstore::MergeOcdbtDatabases(memory, "/merged", {"ocdbt.process_0", "ocdbt.process_1"}, raw);
  }
  AddDatabase(corpus, memory, "/merged", "cairn-merged");
}

// The metadata files as cairn writes them, with what Orbax's fixtures lack: sequence keys, every value type,
// empty nodes, custom metadata, metrics, a NamedSharding.
void AddMetadata(Corpus& corpus) {
  namespace md = cairn::metadata;
  md::TreeMetadata tree;
  using cairn::KeyType;
  const cairn::KeyEntry params{"params"}, w{"w"}, layers{"layers"}, zero{"0", KeyType::kSequence}, step_key{"step"},
      name{"name"}, opt{"opt"}, quoted{"it's"}, empty{"empty"}, one{"1", KeyType::kSequence}, none{"none"};
  tree.entries.push_back({{params, w}, md::kJaxArray, false, cairn::Shape{2, 3}});
  tree.entries.push_back({{layers, zero}, md::kNumpyArray, false, cairn::Shape{}});
  tree.entries.push_back({{step_key}, md::kScalar, false, std::nullopt});
  tree.entries.push_back({{name}, md::kString, false, std::nullopt});
  tree.entries.push_back({{opt, quoted}, md::kPlaceholderType, false, std::nullopt});
  tree.entries.push_back({{empty, one}, md::kEmptyDict, true, std::nullopt});
  tree.entries.push_back({{none}, md::kNone, true, std::nullopt});
  tree.use_ocdbt = true;
  tree.use_zarr3 = false;
  tree.custom_metadata = {{"note", "\u00e9t\u00e9"}, {"n", 3}};
  corpus.Add("tree_metadata", "cairn", md::EncodeTreeMetadata(tree));

  cairn::StepMetadata step;
  step.item_handlers = {
      {"state", "orbax.checkpoint._src.handlers.standard_checkpoint_handler.StandardCheckpointHandler"}};
  step.metrics = {{"loss", 0.25}, {"accuracy", nullptr}};
  step.performance_metrics = {{"save_s", 1.5}};
  step.init_timestamp_nsecs = 1700000000000000000;
  step.commit_timestamp_nsecs = 1700000000100000000;
  step.custom_metadata = {{"run", {1, 2, "three"}}};
  corpus.Add("checkpoint_metadata", "cairn", md::EncodeCheckpointMetadata(step));

  cairn::NamedSharding named{{2, 2}, {"x", "y"}, {{"x", "y"}, {}, {"y"}}};
  corpus.Add("sharding", "cairn",
             md::EncodeShardingFile({{"params.w", named.ToOrbaxJson()}, {"b", md::kSingleDeviceShardingJson}}));
  corpus.Add("array_metadatas", "cairn",
             md::EncodeArrayMetadatas({{"params.w", {8, 6}, {4, 6}}, {"layers.0", {}, {}}, {"e", {0, 3}, {1, 3}}}));

  // `cairn_delta/` records: a full save's (raw-chunk hashes, a save id) and a delta's (shares with a base). The
  // committed seeds also hold one without the optional fields, as older steps have.
  const std::string digest(32, '\x5a');
  md::DeltaRecordFile full;
  full.sha256 = {{"w/.zarray", digest}};
  full.raw_sha256 = {{"w/0.0", digest}, {"w/0.1", std::string(32, '\x01')}};
  full.raw_crc32c = {{"w/0.0", 7}, {"w/0.1", 0xffffffffu}};
  full.bytes_written = 4096;
  full.save_id = "0123456789abcdef0123456789abcdef";
  corpus.Add("delta_record", "cairn", md::EncodeDeltaRecord(full));
  md::DeltaRecordFile delta = full;
  delta.bytes_written = 16;
  delta.bytes_shared = 8192;
  delta.base = "/ckpt/1/default";
  corpus.Add("delta_record", "cairn", md::EncodeDeltaRecord(delta));
}

// A msgpack aggregate with every feature: nested maps, lists, integer keys, scalars, a placeholder, an ndarray, a
// NumPy scalar, a native complex, a tuple, and a chunked array.
void AddAggregate(Corpus& corpus) {
  using Packer = msgpack::packer<msgpack::sbuffer>;
  auto str = [](Packer& p, const std::string& text) {
    p.pack_str(static_cast<uint32_t>(text.size()));
    p.pack_str_body(text.data(), static_cast<uint32_t>(text.size()));
  };
  auto ndarray = [&](const std::vector<uint64_t>& shape, const std::string& dtype, const std::string& data) {
    msgpack::sbuffer buffer;
    Packer p(buffer);
    p.pack_array(3);
    p.pack_array(static_cast<uint32_t>(shape.size()));
    for (uint64_t dim : shape) p.pack_uint64(dim);
    str(p, dtype);
    p.pack_bin(static_cast<uint32_t>(data.size()));
    p.pack_bin_body(data.data(), static_cast<uint32_t>(data.size()));
    return std::string(buffer.data(), buffer.size());
  };
  auto ext = [](Packer& p, int8_t type, const std::string& payload) {
    p.pack_ext(payload.size(), type);
    p.pack_ext_body(payload.data(), static_cast<uint32_t>(payload.size()));
  };
  std::string complex_payload;
  {
    msgpack::sbuffer buffer;
    Packer p(buffer);
    p.pack_array(2);
    p.pack_double(0.5);
    p.pack_double(-1.5);
    complex_payload.assign(buffer.data(), buffer.size());
  }
  std::string tuple_payload;
  {
    msgpack::sbuffer buffer;
    Packer p(buffer);
    p.pack_array(2);
    p.pack_int64(1);
    ext(p, 2, complex_payload);
    tuple_payload.assign(buffer.data(), buffer.size());
  }
  msgpack::sbuffer buffer;
  Packer p(buffer);
  p.pack_map(7);
  str(p, "w");
  ext(p, 1, ndarray({2, 2}, "float32", std::string(16, '\x01')));
  str(p, "step");
  ext(p, 3, ndarray({}, "int64", std::string(8, '\x02')));
  str(p, "c");
  ext(p, 2, complex_payload);
  str(p, "t");
  ext(p, 4, tuple_payload);
  str(p, "list");
  p.pack_array(3);
  p.pack_nil();
  p.pack_true();
  str(p, "PLACEHOLDER://list.2");
  p.pack_int64(3);
  p.pack_map(1);
  p.pack_int64(-1);
  p.pack_double(2.5);
  str(p, "big");
  p.pack_map(3);
  str(p, "__msgpack_chunked_array__");
  p.pack_true();
  str(p, "shape");
  p.pack_map(2);
  str(p, "0");
  p.pack_int64(2);
  str(p, "1");
  p.pack_int64(3);
  str(p, "chunks");
  p.pack_map(2);
  str(p, "0");
  ext(p, 1, ndarray({4}, "int16", std::string(8, '\x03')));
  str(p, "1");
  ext(p, 1, ndarray({2}, "int16", std::string(4, '\x04')));
  corpus.Add("legacy_aggregate", "cairn", std::string_view(buffer.data(), buffer.size()));
}

}  // namespace

// Decompression bombs: frames of a few dozen or hundred bytes that decode to megabytes of zeros, as a zarr chunk
// (whose array holds 64 bytes; 1 MiB, so that the frame stays under the chunk's size cap and reaches the decoder)
// and as a B+tree node body (16 MiB, past the fuzzer's 1 MiB node limit). Each decoder must stop as soon as its
// output passes the limit, whatever the frame says: so one frame records its true content size, one none, and one a
// lying content size of 64 bytes (ZSTD_getFrameContentSize is not to be trusted).
std::vector<std::string> ZstdBombs(size_t decoded_bytes) {
  const std::string zeros(decoded_bytes, '\0');
  auto compress = [&](bool content_size) {
    std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> context(ZSTD_createCCtx(), ZSTD_freeCCtx);
    ZSTD_CCtx_setParameter(context.get(), ZSTD_c_compressionLevel, 19);
    ZSTD_CCtx_setParameter(context.get(), ZSTD_c_contentSizeFlag, content_size ? 1 : 0);
    std::string out(ZSTD_compressBound(zeros.size()), '\0');
    out.resize(ZSTD_compress2(context.get(), out.data(), out.size(), zeros.data(), zeros.size()));
    return out;
  };
  const std::string with_size = compress(true), without_size = compress(false);
  // The frame header: magic (4 bytes), descriptor, the window descriptor unless single-segment, then the content
  // size (4 bytes for these sizes; its low 4 bytes otherwise).
  std::string lying = with_size;
  const auto descriptor = static_cast<unsigned char>(lying[4]);
  cairn::fuzz::StoreU32LE(lying.data() + 5 + ((descriptor & 0x20) ? 0 : 1), 64);
  return {with_size, without_size, lying};
}

void AddDecompressionBombs(Corpus& corpus) {
  for (const std::string& frame : ZstdBombs(size_t{1} << 20)) corpus.Add("zarr_chunk", "bomb", frame);
  for (const std::string& frame : ZstdBombs(size_t{16} << 20)) {
    // magic and length, version 0, compression 1 (zstd), the frame, a CRC: length and CRC are repaired by the fuzzer.
    std::string node(cairn::fuzz::kEnvelopeHeaderBytes, '\0');
    for (int i = 0; i < 4; ++i) node[i] = static_cast<char>(ocdbt::kBtreeNodeMagic >> (24 - 8 * i));  // big-endian
    node += std::string("\x00\x01", 2) + frame + std::string(cairn::fuzz::kEnvelopeCrcBytes, '\0');
    corpus.Add("ocdbt_btree_node", "bomb", node);
  }
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " <orbax fixtures dir> <corpus dir>\n";
    return 2;
  }
  Corpus corpus(argv[2]);
  try {
    AddFixtures(corpus, argv[1]);
    AddMetadata(corpus);
    AddZarr(corpus);
    AddOcdbt(corpus);
    AddAggregate(corpus);
    AddDecompressionBombs(corpus);
  } catch (const std::exception& e) {
    std::cerr << "make_seeds: " << e.what() << "\n";
    return 1;
  }
  std::cout << "make_seeds: wrote " << corpus.written() << " new seed files under " << argv[2] << "\n";
  return 0;
}
