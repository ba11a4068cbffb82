// RestoreArgs::fill_target: a restore into the caller's own arrays (include/cairn/checkpoint_args.h).
#include <gtest/gtest.h>

#include "cairn/cairn.h"
#include "test_util.h"

namespace cairn {
namespace {

using cairn::testing::Iota;
using cairn::testing::TempDir;

RestoreArgsMap Fill(std::optional<DType> dtype = std::nullopt) {
  RestoreArgs args;
  args.dtype = dtype;
  args.fill_target = true;
  return {{"", args}};
}

const std::byte* Bytes(const void* p) { return static_cast<const std::byte*>(p); }

// (use_ocdbt, use_zarr3, use_compression, chunked): every layout, with one chunk per array or many.
class FillTargetTest : public ::testing::TestWithParam<std::tuple<bool, bool, bool, bool>> {
 protected:
  void Save(const std::filesystem::path& path, const Tree& state) {
    PyTreeCheckpointHandlerOptions options;
    options.use_ocdbt = std::get<0>(GetParam());
    options.use_zarr3 = std::get<1>(GetParam());
    options.use_compression = std::get<2>(GetParam());
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(options));
    SaveArgsMap save_args;
    if (std::get<3>(GetParam())) save_args[""].chunk_byte_size = 1024;
    ckptr.save(path, args::PyTreeSave{state, save_args});
  }
  Checkpointer Reader() { return Checkpointer(std::make_unique<PyTreeCheckpointHandler>()); }
};

TEST_P(FillTargetTest, TheCallersBytesAreFilledAndShared) {
  TempDir dir;
  const Tree state = Tree::Dict({{"w", Iota({64, 32})}, {"b", Iota({16}, DType::kBFloat16)},
                                 {"step", Tree::Scalar(int64_t{7})}});
  Save(dir / "1", state);
  std::vector<float> w(64 * 32, -1.0f);
  std::vector<uint16_t> b(16, 0xffff);
  Array owned = Array::Zeros(DType::kBFloat16, {16});  // an array cairn owns is writable too
  const Tree target = Tree::Dict({{"w", Tree(Array::FromBorrowedWritable(w.data(), DType::kFloat32, {64, 32}))},
                                  {"b", Tree(owned)},
                                  {"step", Tree::Scalar(int64_t{0})}});
  Checkpointer ckptr = Reader();
  Tree restored = ckptr.restore(dir / "1", args::PyTreeRestore{target, Fill()});
  EXPECT_EQ(restored["w"].array().bytes().data(), Bytes(w.data()));
  EXPECT_EQ(restored["b"].array().bytes().data(), owned.bytes().data());
  EXPECT_EQ(restored, state);
  EXPECT_EQ(Array::FromBorrowed(w.data(), DType::kFloat32, {64, 32}), state["w"].array());
  EXPECT_EQ(owned, state["b"].array());
}

TEST_P(FillTargetTest, CastsIntoTheTargetsDType) {
  TempDir dir;
  const Tree state = Tree::Dict({{"w", Iota({40, 24}, DType::kBFloat16)}});
  Save(dir / "1", state);
  std::vector<double> w(40 * 24, -1.0);
  const Tree target = Tree::Dict({{"w", Tree(Array::FromBorrowedWritable(w.data(), DType::kFloat64, {40, 24}))}});
  Checkpointer ckptr = Reader();
  Tree restored = ckptr.restore(dir / "1", args::PyTreeRestore{target, Fill()});
  EXPECT_EQ(restored["w"].array().bytes().data(), Bytes(w.data()));
  EXPECT_EQ(restored["w"].array(), state["w"].array().Cast(DType::kFloat64));
}

TEST_P(FillTargetTest, ShardedTargetsFillEachBox) {
  // Boxes that cut the stored chunks (chunked layouts) land in each shard's own buffer.
  TempDir dir;
  const Array whole = Iota({48, 20}, DType::kInt32);
  Save(dir / "1", Tree::Dict({{"x", whole}}));
  std::vector<int32_t> top(30 * 20, -1), bottom(18 * 20, -1);
  std::vector<Shard> shards;
  shards.push_back({Box{{0, 0}, {30, 20}}, 0, Array::FromBorrowedWritable(top.data(), DType::kInt32, {30, 20})});
  shards.push_back({Box{{30, 0}, {18, 20}}, 0, Array::FromBorrowedWritable(bottom.data(), DType::kInt32, {18, 20})});
  const Tree target = Tree::Dict({{"x", Tree(ShardedArray(DType::kInt32, {48, 20}, shards))}});
  Checkpointer ckptr = Reader();
  Tree restored = ckptr.restore(dir / "1", args::PyTreeRestore{target, Fill()});
  const auto& got = restored["x"].sharded_array().shards();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].data.bytes().data(), Bytes(top.data()));
  EXPECT_EQ(got[1].data.bytes().data(), Bytes(bottom.data()));
  const auto all = whole.data<int32_t>();
  for (size_t i = 0; i < top.size(); ++i) ASSERT_EQ(top[i], all[i]) << i;
  for (size_t i = 0; i < bottom.size(); ++i) ASSERT_EQ(bottom[i], all[top.size() + i]) << i;
}

INSTANTIATE_TEST_SUITE_P(Layouts, FillTargetTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Bool(),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "Ocdbt" : "PerParam") +
                                  (std::get<1>(info.param) ? "Zarr3" : "V2") +
                                  (std::get<2>(info.param) ? "Zstd" : "Raw") +
                                  (std::get<3>(info.param) ? "Chunked" : "OneChunk");
                         });

TEST(FillTarget, BadTargetsFailBeforeAnythingIsRead) {
  TempDir dir;
  const Tree state = Tree::Dict({{"a", Iota({8, 4})}, {"b", Iota({8, 4})}});
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>());
  ckptr.save(dir / "1", args::PyTreeSave{state});
  std::vector<float> a(8 * 4, -1.0f), b(8 * 4, -1.0f);
  const Tree good_a = Tree(Array::FromBorrowedWritable(a.data(), DType::kFloat32, {8, 4}));
  auto expect_refused = [&](const Tree& bad_b, RestoreArgsMap restore_args, bool strict, const std::string& says) {
    try {
      ckptr.restore(dir / "1", args::PyTreeRestore{Tree::Dict({{"a", good_a}, {"b", bad_b}}), restore_args,
                                                   false, strict});
      ADD_FAILURE() << "restored into a bad target (" << says << ")";
    } catch (const InvalidArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("parameter b"), std::string::npos) << e.what();
    }
    EXPECT_EQ(a, std::vector<float>(8 * 4, -1.0f)) << "a leaf was read before the bad one was refused";
  };
  // Read-only (a borrowed array), another shape (even with strict=false), and a dtype the args contradict.
  expect_refused(Tree(Array::FromBorrowed(b.data(), DType::kFloat32, {8, 4})), Fill(), true, "read-only");
  expect_refused(Tree(Array::FromBorrowedWritable(b.data(), DType::kFloat32, {4, 8})), Fill(), false, "shape");
  RestoreArgsMap contradicting = Fill();
  contradicting["b"] = Fill(DType::kFloat64)[""];
  expect_refused(Tree(Array::FromBorrowedWritable(b.data(), DType::kFloat32, {8, 4})), contradicting, true, "dtype");
  EXPECT_EQ(b, std::vector<float>(8 * 4, -1.0f));
  // Without fill_target, the same read-only target is just a target: a new array comes back.
  Tree restored = ckptr.restore(
      dir / "1", args::PyTreeRestore{Tree::Dict({{"a", good_a}, {"b", Tree(Array::FromBorrowed(b.data(),
                                                                                                DType::kFloat32,
                                                                                                {8, 4}))}})});
  EXPECT_EQ(restored, state);
  EXPECT_NE(restored["a"].array().bytes().data(), Bytes(a.data()));
}

}  // namespace
}  // namespace cairn
