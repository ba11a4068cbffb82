// RestoreArgs::lazy: arrays over mappings of their files, checked per block on access or up front.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "cairn/cairn.h"
#include "core/crc32c.h"
#include "kvstore/checked_pager.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using cairn::testing::Iota;
using cairn::testing::TempDir;

RestoreArgsMap Lazy(RestoreArgs::LazyCheck check) {
  RestoreArgs args;
  args.lazy = true;
  args.lazy_check = check;
  return {{"", args}};
}

Tree State() {
  // "w": 1 MiB, 16 checksum blocks; "b": a few bytes; "step": a scalar.
  return Tree::Dict({{"w", Iota({256, 1024})}, {"b", Iota({3}, DType::kInt32)}, {"step", Tree::Scalar(int64_t{3})}});
}

void Save(const fs::path& path, const Tree& state, bool ocdbt, bool compression,
          std::shared_ptr<FileSystem> file_system = FileSystem::Default()) {
  PyTreeCheckpointHandlerOptions options;
  options.use_ocdbt = ocdbt;
  options.use_compression = compression;
  CheckpointerOptions ckptr_options;
  ckptr_options.file_system = std::move(file_system);
  Checkpointer(std::make_unique<PyTreeCheckpointHandler>(options), ckptr_options).save(path, args::PyTreeSave{state});
}

Tree Restore(const fs::path& path, RestoreArgs::LazyCheck check,
             std::shared_ptr<FileSystem> file_system = FileSystem::Default()) {
  CheckpointerOptions options;
  options.file_system = std::move(file_system);
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(), options);
  return ckptr.restore(path, args::PyTreeRestore{Tree::None(), Lazy(check)});
}

// The largest file of the checkpoint ("w"'s chunk, or the OCDBT data file holding it), with one byte changed in
// its middle (inside "w"'s bytes, in its block `size / 2 / 64 KiB` for a per-parameter file).
fs::path CorruptLargestFile(const fs::path& dir) {
  fs::path largest;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file() && (largest.empty() || entry.file_size() > fs::file_size(largest))) {
      largest = entry.path();
    }
  }
  std::fstream f(largest, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(fs::file_size(largest) / 2));
  f.put('\x5a');
  return largest;
}

double Sum(const Array& a) {
  double sum = 0;
  for (float v : a.data<float>()) sum += v;
  return sum;
}

class LazyRestoreTest : public ::testing::TestWithParam<std::tuple<bool, RestoreArgs::LazyCheck>> {};

TEST_P(LazyRestoreTest, MappedReadOnlyExactAndOutlivesTheCheckpointAndItsFiles) {
  TempDir dir;
  const Tree state = State();
  Save(dir / "1", state, std::get<0>(GetParam()), /*compression=*/false);
  Tree restored = Restore(dir / "1", std::get<1>(GetParam()));
  // The checkpointer is gone; so are the files: the mappings (and the open file a pager reads) keep the bytes.
  fs::remove_all(dir / "1");
  const Array& w = restored["w"].array();
  EXPECT_EQ(w.ownership(), Ownership::kShared);  // over the mapping, not a buffer cairn filled
  EXPECT_FALSE(w.writable());
  Array copy = w;
  EXPECT_THROW(copy.mutable_bytes(), InvalidArgumentError);
  EXPECT_EQ(restored, state);
}

TEST_P(LazyRestoreTest, LazyArraysSaveAgainUntouched) {
  // A save writes the arrays' bytes from the kernel (pwrite): pages never touched are paged in (and checked) for
  // it as for any read, synchronously and from a background save alike.
  TempDir dir;
  const Tree state = State();
  Save(dir / "1", state, std::get<0>(GetParam()), /*compression=*/false);
  Tree restored = Restore(dir / "1", std::get<1>(GetParam()));
  Save(dir / "2", restored, !std::get<0>(GetParam()), /*compression=*/false);
  {
    AsyncCheckpointer async(std::make_unique<PyTreeCheckpointHandler>());
    async.save(dir / "3", args::PyTreeSave{Restore(dir / "1", std::get<1>(GetParam()))});
  }
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>());
  EXPECT_EQ(ckptr.restore(dir / "2"), state);
  EXPECT_EQ(ckptr.restore(dir / "3"), state);
}

TEST_P(LazyRestoreTest, CompressedArraysAreReadEagerly) {
  TempDir dir;
  const Tree state = State();
  Save(dir / "1", state, std::get<0>(GetParam()), /*compression=*/true);
  Tree restored = Restore(dir / "1", std::get<1>(GetParam()));
  EXPECT_EQ(restored["w"].array().ownership(), Ownership::kOwned);
  EXPECT_EQ(restored, state);
}

TEST_P(LazyRestoreTest, FileSystemsThatCannotMapAreReadEagerly) {
  auto memory = NewInMemoryFileSystem();
  memory->CreateDir("/ckpt");
  const Tree state = State();
  Save("/ckpt/1", state, std::get<0>(GetParam()), /*compression=*/false, memory);
  Tree restored = Restore("/ckpt/1", std::get<1>(GetParam()), memory);
  EXPECT_EQ(restored["w"].array().ownership(), Ownership::kOwned);
  EXPECT_EQ(restored, state);
}

TEST_P(LazyRestoreTest, TargetsThatAskForAnotherDTypeAreReadEagerly) {
  TempDir dir;
  const Tree state = State();
  Save(dir / "1", state, std::get<0>(GetParam()), /*compression=*/false);
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>());
  RestoreArgsMap args = Lazy(std::get<1>(GetParam()));
  args["w"] = args[""];
  args["w"].dtype = DType::kFloat64;
  Tree restored = ckptr.restore(dir / "1", args::PyTreeRestore{Tree::None(), args});
  EXPECT_EQ(restored["w"].array().ownership(), Ownership::kOwned);
  EXPECT_EQ(restored["w"].array(), state["w"].array().Cast(DType::kFloat64));
  // (OCDBT keeps values this small inline in its nodes: read eagerly.)
  if (!std::get<0>(GetParam())) {
    EXPECT_EQ(restored["b"].array().ownership(), Ownership::kShared);
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, LazyRestoreTest,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(RestoreArgs::LazyCheck::kOnAccess,
                                                              RestoreArgs::LazyCheck::kUpFront)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "Ocdbt" : "PerParam") +
                                  (std::get<1>(info.param) == RestoreArgs::LazyCheck::kOnAccess ? "OnAccess"
                                                                                               : "UpFront");
                         });

TEST(LazyRestore, UpFrontCheckNamesTheBadBlock) {
  for (bool ocdbt : {false, true}) {
    TempDir dir;
    Save(dir / "1", State(), ocdbt, /*compression=*/false);
    CorruptLargestFile(dir / "1");
    try {
      Restore(dir / "1", RestoreArgs::LazyCheck::kUpFront);
      ADD_FAILURE() << "a corrupt block was handed out (ocdbt=" << ocdbt << ")";
    } catch (const CorruptionError& e) {
      EXPECT_NE(std::string(e.what()).find("fail their CRC-32C check"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("w/0.0"), std::string::npos) << e.what();
    }
  }
}

TEST(LazyRestore, OnAccessChecksOnlyTheBlocksTouched) {
  TempDir dir;
  const Tree state = State();
  Save(dir / "1", state, /*ocdbt=*/false, /*compression=*/false);
  CorruptLargestFile(dir / "1");  // block 8 of "w"'s 16
  if (!kvstore::OnAccessPagingAvailable()) {
    // Without userfaultfd, on-access is up front (documented): the restore itself fails.
    EXPECT_THROW(Restore(dir / "1", RestoreArgs::LazyCheck::kOnAccess), CorruptionError);
    return;
  }
  Tree restored = Restore(dir / "1", RestoreArgs::LazyCheck::kOnAccess);
  const auto w = restored["w"].array().data<float>();
  const auto expected = state["w"].array().data<float>();
  const size_t per_block = kCrc32cBlockBytes / sizeof(float);
  // The first 8 blocks and the last 7 are fine, read in any order; the bad one is never touched here.
  for (size_t i : {size_t{0}, 7 * per_block, 9 * per_block + 5, w.size() - 1, 3 * per_block + 17}) {
    EXPECT_EQ(w[i], expected[i]) << i;
  }
  EXPECT_EQ(restored["b"].array(), state["b"].array());
}

TEST(LazyRestoreDeathTest, OnAccessAbortsNamingTheBadBlock) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // the child re-runs this test alone: no inherited threads
  TempDir dir;
  Save(dir / "1", State(), /*ocdbt=*/false, /*compression=*/false);
  CorruptLargestFile(dir / "1");
  if (!kvstore::OnAccessPagingAvailable()) {  // (ThreadSanitizer builds): checked up front instead, as documented
    EXPECT_THROW(Restore(dir / "1", RestoreArgs::LazyCheck::kOnAccess), CorruptionError);
    return;
  }
  EXPECT_DEATH(
      {
        Tree restored = Restore(dir / "1", RestoreArgs::LazyCheck::kOnAccess);
        std::printf("%f\n", Sum(restored["w"].array()));
      },
      "lazy restore: value w/0.0 .*block 8 .*fails its CRC-32C check");
}

}  // namespace
}  // namespace cairn
