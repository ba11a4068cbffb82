// Damaged OCDBT databases and data files: a restore returns exactly what was saved or throws cairn::Error
// (corruption, or not-found for a missing file). Never a crash, a hang, or wrong data.
#include <gtest/gtest.h>

#include <fstream>

#include "cairn/cairn.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using cairn::testing::Iota;
using cairn::testing::Noise;
using cairn::testing::Slurp;
using cairn::testing::Spit;


TEST(Corruption, EveryByteOfEveryDatabaseFile) {
  cairn::testing::TempDir dir;
  // One array big enough to live out of line in a data file, and small ones inline in B+tree leaves.
  const Tree state = Tree::Dict({{"big", Noise({32, 32})}, {"small", Iota({4}, DType::kInt32)}, {"s", Tree::Scalar(7.5)}});
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>());
  ckptr.save(dir / "ckpt", args::StandardSave{state});

  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir / "ckpt")) {
    const std::string rel = fs::relative(entry.path(), dir / "ckpt").string();
    if (entry.is_regular_file() && (rel.find("manifest.ocdbt") != std::string::npos || rel.find("d/") != std::string::npos)) {
      files.push_back(entry.path());
    }
  }
  ASSERT_GE(files.size(), 4u);
  bool out_of_line = false;
  for (const auto& file : files) out_of_line |= fs::file_size(file) > 4096;
  ASSERT_TRUE(out_of_line) << "the big array should be in a data file";
  int detected = 0, harmless = 0;
  for (const auto& file : files) {
    const std::string original = Slurp(file);
    const size_t stride = original.size() > 4096 ? 7 : 1;
    for (size_t pos = 0; pos < original.size(); pos += stride) {
      std::string damaged = original;
      damaged[pos] = static_cast<char>(damaged[pos] ^ 0x5a);
      Spit(file, damaged);
      try {
        Tree restored = ckptr.restore(dir / "ckpt");
        ASSERT_EQ(restored, state) << "wrong data after flipping byte " << pos << " of " << file;
        ++harmless;  // e.g. a byte of the per-process manifest, which readers of the merged root never open
      } catch (const Error&) {
        ++detected;
      }
    }
    // Truncations and a missing file.
    for (size_t length : {size_t{0}, original.size() / 2, original.size() - 1}) {
      Spit(file, original.substr(0, length));
      try {
        ASSERT_EQ(ckptr.restore(dir / "ckpt"), state) << file << " truncated to " << length;
      } catch (const Error&) {
      }
    }
    fs::remove(file);
    try {
      ASSERT_EQ(ckptr.restore(dir / "ckpt"), state) << file << " removed";
    } catch (const Error&) {
    }
    Spit(file, original);
  }
  EXPECT_GT(detected, harmless);
  EXPECT_EQ(ckptr.restore(dir / "ckpt"), state);
}

// With checksums, even uncompressed data (which has no checksum of its own in zarr or OCDBT) and the JSON
// metadata files are checked: a flipped byte is a CorruptionError naming the file or chunk, never wrong data.
TEST(Integrity, EveryChunkAndMetadataFileIsChecked) {
  for (bool ocdbt : {true, false}) {
    SCOPED_TRACE(ocdbt ? "ocdbt" : "directories");
    cairn::testing::TempDir dir;
    PyTreeCheckpointHandlerOptions options;
    options.use_compression = false;
    options.use_ocdbt = ocdbt;
    const Tree state = Tree::Dict({{"big", Noise({32, 32})}, {"small", Iota({4}, DType::kInt32)}, {"name", "x"}});
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(options));
    ckptr.save(dir / "ckpt", args::PyTreeSave{state});
    ASSERT_TRUE(fs::exists(dir / "ckpt/cairn_checksums/process_0"));

    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(dir / "ckpt")) {
      const std::string rel = fs::relative(entry.path(), dir / "ckpt").string();
      // Files no restore reads: the per-process OCDBT manifests (readers open the merged root) and the step
      // metadata (read by metadata(), not restore).
      if (!entry.is_regular_file() || rel == "ocdbt.process_0/manifest.ocdbt" || rel == "_CHECKPOINT_METADATA" ||
          rel == "commit_success.txt") {
        continue;
      }
      files.push_back(entry.path());
    }
    for (const auto& file : files) {
      const std::string original = Slurp(file);
      for (size_t pos : {size_t{0}, original.size() / 2, original.size() - 1}) {
        std::string damaged = original;
        damaged[pos] = static_cast<char>(damaged[pos] ^ 0x01);
        Spit(file, damaged);
        try {
          // Only bytes no restore reads may be flipped unnoticed (such as the per-process B+tree nodes at the
          // end of a process's data file: readers use the merged root's).
          Tree restored = ckptr.restore(dir / "ckpt");
          EXPECT_EQ(restored, state) << "WRONG DATA after flipping byte " << pos << " of " << file;
        } catch (const CorruptionError& e) {
        } catch (const Error& e) {
          // Some damage is caught by parsing before any checksum (a JSON syntax error, a bad magic number).
        }
      }
      Spit(file, original);
    }
    EXPECT_EQ(ckptr.restore(dir / "ckpt"), state);

    // Turned off, a flipped data byte goes unnoticed: that is what the checksums are for.
    PyTreeCheckpointHandlerOptions unchecked = options;
    unchecked.verify_checksums = false;
    Checkpointer trusting(std::make_unique<PyTreeCheckpointHandler>(unchecked));
    for (const auto& file : files) {
      if (fs::file_size(file) < 4096) continue;  // the big array's chunk
      std::string data = Slurp(file);
      data[data.size() / 2] ^= 0x01;
      Spit(file, data);
      EXPECT_FALSE(trusting.restore(dir / "ckpt") == state);
      EXPECT_THROW(ckptr.restore(dir / "ckpt"), CorruptionError);
    }
  }
}

}  // namespace
}  // namespace cairn
