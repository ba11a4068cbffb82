// VerifyCheckpoint and DescribeCheckpoint: intact checkpoints pass in every layout; every kind of damage is named.
#include "cairn/verify.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "cairn/cairn.h"
#include "cairn/inspect.h"
#include "test_util.h"

namespace cairn {
namespace {

using ::testing::HasSubstr;
using testing::Iota;
using testing::TempDir;
namespace fs = std::filesystem;

Tree State() {
  return Tree::Dict({{"params", Tree::Dict({{"w", Iota({64, 64})}, {"b", Iota({7}, DType::kBFloat16)}})},
                     {"step", Tree::Scalar(int64_t{3})}});
}

void Save(const fs::path& dir, PyTreeCheckpointHandlerOptions options, int64_t chunk_bytes = 0) {
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>(options));
  SaveArgsMap save_args;
  if (chunk_bytes) {
    SaveArgs a;
    a.chunk_byte_size = chunk_bytes;
    save_args[""] = a;
  }
  ckptr.save(dir, args::StandardSave(State(), save_args));
}

void FlipByte(const fs::path& file, std::streamoff offset = -1) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f) << file;
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  ASSERT_GT(size, 0);
  const std::streamoff at = offset >= 0 ? offset : size / 2;
  f.seekg(at);
  char c;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(at);
  f.write(&c, 1);
}

std::string Problems(const VerifyReport& r) {
  std::string out;
  for (const auto& p : r.problems) out += p.where + ": " + p.message + "\n";
  return out;
}

bool HasProblemAt(const VerifyReport& r, const std::string& where) {
  for (const auto& p : r.problems) {
    if (p.where == where) return true;
  }
  return false;
}

fs::path LargestFileUnder(const fs::path& dir) {
  fs::path best;
  uintmax_t size = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.file_size() > size) {
      size = e.file_size();
      best = e.path();
    }
  }
  return best;
}

struct Layout {
  const char* name;
  bool ocdbt, zarr3, compression;
};
PyTreeCheckpointHandlerOptions Options(const Layout& l) {
  PyTreeCheckpointHandlerOptions o;
  o.use_ocdbt = l.ocdbt;
  o.use_zarr3 = l.zarr3;
  o.use_compression = l.compression;
  return o;
}
class VerifyLayouts : public ::testing::TestWithParam<Layout> {};

TEST_P(VerifyLayouts, IntactCheckpointPassesAndEveryByteIsRead) {
  TempDir dir;
  const Layout l = GetParam();
  Save(dir / "1", Options(l), 4096);
  uint64_t last_done = 0, last_total = 0;
  VerifyOptions options;
  options.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_GE(done, last_done);
    last_done = done;
    last_total = total;
  };
  VerifyReport r = VerifyCheckpoint(dir / "1", options);
  EXPECT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.kind, "step");
  EXPECT_EQ(r.arrays, 3u);
  EXPECT_EQ(r.chunks, 4u + 1u + 1u);  // w in 4 chunks of 4 KiB, b, step
  EXPECT_EQ(r.chunks_checksummed, r.chunks);
  EXPECT_GE(r.files_checksummed, 3u);  // _METADATA, _sharding, array_metadatas/process_0
  EXPECT_TRUE(r.notes.empty());
  EXPECT_EQ(last_done, last_total);
  EXPECT_GT(last_total, 1000u);
}

TEST_P(VerifyLayouts, FlippedByteInAChunkIsNamed) {
  TempDir dir;
  const Layout l = GetParam();
  Save(dir / "1", Options(l), 4096);
  if (l.ocdbt) {
    FlipByte(LargestFileUnder(dir / "1" / "ocdbt.process_0" / "d"), 100);
  } else {
    FlipByte(dir / "1" / "params.w" / (l.zarr3 ? "c/0/0" : "0.0"), 10);
  }
  VerifyReport r = VerifyCheckpoint(dir / "1");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(Problems(r), HasSubstr("params.w/"));
  if (!l.ocdbt) {
    EXPECT_TRUE(HasProblemAt(r, l.zarr3 ? "params.w/c/0/0" : "params.w/0.0")) << Problems(r);
  }
}

// (A chunk cannot be taken out of an OCDBT data file; MissingFiles removes the database's manifest instead.)
TEST(Verify, MissingChunkIsNamed) {
  for (const bool zarr3 : {false, true}) {
    for (const bool compression : {false, true}) {
      TempDir dir;
      PyTreeCheckpointHandlerOptions options;
      options.use_ocdbt = false;
      options.use_zarr3 = zarr3;
      options.use_compression = compression;
      Save(dir / "1", options, 4096);
      const std::string key = zarr3 ? "params.w/c/1/0" : "params.w/1.0";
      fs::remove(dir / "1" / key);
      VerifyReport r = VerifyCheckpoint(dir / "1");
      EXPECT_TRUE(HasProblemAt(r, key)) << Problems(r);
      EXPECT_THAT(Problems(r), HasSubstr("is missing"));
      EXPECT_EQ(r.problems.size(), 1u) << Problems(r);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(, VerifyLayouts,
                         ::testing::Values(Layout{"ocdbt_zarr2_zstd", true, false, true},
                                           Layout{"ocdbt_zarr3_raw", true, true, false},
                                           Layout{"dirs_zarr2_zstd", false, false, true},
                                           Layout{"dirs_zarr2_raw", false, false, false},
                                           Layout{"dirs_zarr3_zstd", false, true, true}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Verify, FlippedByteInEachMetadataFileIsNamed) {
  for (const std::string file : {"_METADATA", "_sharding", "array_metadatas/process_0"}) {
    TempDir dir;
    Save(dir / "1", {});
    FlipByte(dir / "1" / file, 3);
    VerifyReport r = VerifyCheckpoint(dir / "1");
    EXPECT_TRUE(HasProblemAt(r, file)) << file << ":\n" << Problems(r);
    EXPECT_THAT(Problems(r), HasSubstr("CRC-32C")) << file;
  }
  TempDir dir;
  Save(dir / "1", {});
  // A flip inside a JSON string still parses: only its CRC-32C (cairn_checkpoint_metadata.crc32c) catches it.
  FlipByte(dir / "1" / "_CHECKPOINT_METADATA", 3);
  VerifyReport damaged = VerifyCheckpoint(dir / "1");
  EXPECT_TRUE(HasProblemAt(damaged, "_CHECKPOINT_METADATA")) << Problems(damaged);
  EXPECT_THAT(Problems(damaged), HasSubstr("CRC-32C"));
  fs::remove(dir / "1" / "_CHECKPOINT_METADATA");
  EXPECT_TRUE(HasProblemAt(VerifyCheckpoint(dir / "1"), "_CHECKPOINT_METADATA"));
  TempDir dir2;
  Save(dir2 / "1", {});
  FlipByte(dir2 / "1" / "cairn_checksums" / "process_0", 0);
  EXPECT_TRUE(HasProblemAt(VerifyCheckpoint(dir2 / "1"), "cairn_checksums/process_0"));
}

// The item reader, in its checking mode, goes on after each problem: damage in several files and chunks of one item
// is all reported, each where it is (two of them are read by one loader, `_sharding` and `array_metadatas/`).
TEST(Verify, EveryProblemOfAnItemIsReportedNotTheFirst) {
  TempDir dir;
  PyTreeCheckpointHandlerOptions options;
  options.use_ocdbt = false;
  options.use_compression = false;
  Save(dir / "1", options, 4096);
  FlipByte(dir / "1" / "_sharding", 3);
  FlipByte(dir / "1" / "array_metadatas" / "process_0", 3);
  FlipByte(dir / "1" / "params.w" / "0.0", 10);
  fs::remove(dir / "1" / "params.w" / "1.0");
  VerifyReport r = VerifyCheckpoint(dir / "1");
  for (const std::string where : {"_sharding", "array_metadatas/process_0", "params.w/0.0", "params.w/1.0"}) {
    EXPECT_TRUE(HasProblemAt(r, where)) << where << ":\n" << Problems(r);
  }
  EXPECT_EQ(r.problems.size(), 4u) << Problems(r);
  // What could still be read was: the other arrays, all their chunks, and every other metadata file.
  EXPECT_EQ(r.arrays, 2u);
  EXPECT_GE(r.files_checked, 4u);
}

// A JSON item's file carries its CRC-32C in a sibling file (cairn_<name>.crc32c), which verify checks and never
// mistakes for a second JSON file.
TEST(Verify, JsonItemsAreChecksummed) {
  TempDir dir;
  {
    CheckpointManagerOptions options;
    options.enable_async_checkpointing = false;
    CheckpointManager mngr(dir.path(), options);
    mngr.save(1, args::Composite({{"state", args::Item(args::StandardSave{State()})},
                                  {"meta", args::Item(args::JsonSave{nlohmann::json{{"lr", 0.25}}})}}));
  }
  VerifyReport r = VerifyCheckpoint(dir / "1");
  EXPECT_TRUE(r.ok()) << Problems(r);
  FlipByte(dir / "1" / "meta" / "metadata", 8);  // "0.25" -> another digit: still JSON
  r = VerifyCheckpoint(dir / "1");
  EXPECT_TRUE(HasProblemAt(r, "meta/metadata")) << Problems(r);
  EXPECT_THAT(Problems(r), HasSubstr("CRC-32C"));
}

TEST(Verify, FlippedByteInAnOcdbtManifestOrNode) {
  TempDir dir;
  Save(dir / "1", {});
  FlipByte(dir / "1" / "manifest.ocdbt");
  VerifyReport r = VerifyCheckpoint(dir / "1");
  EXPECT_FALSE(r.ok());
  TempDir dir2;
  Save(dir2 / "1", {});
  FlipByte(dir2 / "1" / "ocdbt.process_0" / "manifest.ocdbt");
  r = VerifyCheckpoint(dir2 / "1");
  EXPECT_TRUE(HasProblemAt(r, "ocdbt.process_0")) << Problems(r);
}

TEST(Verify, MissingFiles) {
  TempDir dir;
  Save(dir / "1", {});
  fs::remove(dir / "1" / "manifest.ocdbt");
  VerifyReport r = VerifyCheckpoint(dir / "1");
  EXPECT_THAT(Problems(r), HasSubstr("manifest.ocdbt")) << Problems(r);
  TempDir dir2;
  Save(dir2 / "1", {});
  fs::remove(dir2 / "1" / "_sharding");
  EXPECT_TRUE(HasProblemAt(VerifyCheckpoint(dir2 / "1"), "_sharding"));
}

TEST(Verify, OrbaxFixturesHaveNoChecksumsButDecode) {
  const auto base = testing::FixturesDir() / "v0_checkpoints";
  VerifyReport r = VerifyCheckpoint(base / "direct_checkpoint/checkpoint_metadata_present/pytree_checkpointable_has_metadata");
  EXPECT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.arrays, 2u);
  ASSERT_FALSE(r.notes.empty());
  EXPECT_THAT(r.notes[0], HasSubstr("no checksums"));
  r = VerifyCheckpoint(base / "composite_checkpoint/checkpoint_metadata_present/pytree_checkpointable_has_metadata");
  EXPECT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.items, 2u);
  r = VerifyCheckpoint(base / "direct_checkpoint/critical_metadata_alterations/missing_pytree_data_file_manifest.ocdbt");
  EXPECT_FALSE(r.ok());
  r = VerifyCheckpoint(testing::FixturesDir() / "zarr_v2/aggregate_some.checkpoint");
  EXPECT_TRUE(r.ok()) << Problems(r);
}

TEST(Verify, ManagerRootVerifiesEveryStep) {
  TempDir dir;
  {
    CheckpointManagerOptions options;
    options.enable_async_checkpointing = false;
    CheckpointManager mngr(dir.path(), options);
    mngr.save(1, args::StandardSave(State()));
    mngr.save(2, args::StandardSave(State()));
  }
  fs::create_directory(dir / "3.orbax-checkpoint-tmp");
  VerifyReport r = VerifyCheckpoint(dir.path());
  EXPECT_TRUE(r.ok()) << Problems(r);
  EXPECT_EQ(r.kind, "root");
  EXPECT_EQ(r.steps, 2u);
  FlipByte(dir / "2" / "default" / "_METADATA", 2);
  r = VerifyCheckpoint(dir.path());
  EXPECT_TRUE(HasProblemAt(r, "2/default/_METADATA")) << Problems(r);
}

TEST(Verify, BadPaths) {
  TempDir dir;
  EXPECT_THROW(VerifyCheckpoint(dir / "missing"), NotFoundError);
  fs::create_directory(dir / "5.orbax-checkpoint-tmp");
  EXPECT_THROW(VerifyCheckpoint(dir / "5"), InvalidArgumentError);
  EXPECT_THROW(VerifyCheckpoint(dir / "5.orbax-checkpoint-tmp"), InvalidArgumentError);
  fs::create_directory(dir / "empty");
  EXPECT_THROW(VerifyCheckpoint(dir / "empty"), NotFoundError);
}

TEST(Describe, FromMetadataAlone) {
  TempDir dir;
  PyTreeCheckpointHandlerOptions options;
  options.use_ocdbt = false;
  Save(dir / "1", options, 4096);
  // Remove every chunk: the description needs none of them.
  for (const auto& e : fs::directory_iterator(dir / "1" / "params.w")) {
    if (e.path().filename() != ".zarray") fs::remove(e.path());
  }
  auto d = DescribeCheckpoint(dir / "1");
  EXPECT_EQ(d["kind"], "step");
  const auto& item = d["items"][0];
  EXPECT_EQ(item["layout"]["ocdbt"], false);
  EXPECT_EQ(item["layout"]["checksums"], true);
  bool found = false;
  for (const auto& leaf : item["tree"]) {
    if (leaf["name"] == "params.w") {
      found = true;
      EXPECT_EQ(leaf["dtype"], "float32");
      EXPECT_EQ(leaf["shape"], nlohmann::json({64, 64}));
      EXPECT_EQ(leaf["bytes"], 16384);
      EXPECT_EQ(leaf["chunks"], nlohmann::json({32, 32}));
      EXPECT_EQ(leaf["compression"], "zstd(1)");
    }
  }
  EXPECT_TRUE(found) << d.dump(2);
  EXPECT_EQ(d["step_metadata"]["item_handlers"],
            "orbax.checkpoint._src.handlers.standard_checkpoint_handler.StandardCheckpointHandler");
}

}  // namespace
}  // namespace cairn
