// Interop: what cairn writes in Orbax's per-parameter zarr layout opens with Debian's python3-zarr.
#include <gtest/gtest.h>

#include <cstdlib>

#include "cairn/cairn.h"
#include "test_util.h"

namespace cairn {
namespace {

using cairn::testing::Iota;

TEST(ZarrPythonInterop, PythonZarrReadsWhatCairnWrote) {
  if (std::system("/usr/bin/python3 -c 'import zarr, numpy' 2>/dev/null") != 0) {
    GTEST_FAIL() << "python3-zarr is not installed: run scripts/install-deps.sh";
  }
  for (bool compression : {true, false}) {
    cairn::testing::TempDir dir;
    PyTreeCheckpointHandlerOptions options;
    options.use_ocdbt = false;
    options.use_compression = compression;
    // Names start with the NumPy dtype so the script knows what to expect. (bfloat16 and float8 have no
    // NumPy dtype in python3-zarr.)
    Tree state = Tree::Dict({{"float32_w", Iota({6, 5})},
                             {"int64_steps", Iota({7}, DType::kInt64)},
                             {"float16_h", Iota({2, 3, 4}, DType::kFloat16)},
                             {"uint8_u", Iota({10}, DType::kUInt8)},
                             {"bool_mask", Iota({3}, DType::kBool)},
                             {"complex64_c", Iota({2, 2}, DType::kComplex64)},
                             {"float64_chunked", Iota({64, 32}, DType::kFloat64)}});
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(options));
    ckptr.save(dir / "ckpt", args::PyTreeSave{state, {{"float64_chunked", SaveArgs{std::nullopt, 1024, std::nullopt}}}});
    std::string command = "/usr/bin/python3 " CAIRN_SOURCE_DIR "/tests/interop/read_with_zarr.py " +
                          (dir / "ckpt").string();
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
  }
}

}  // namespace
}  // namespace cairn
