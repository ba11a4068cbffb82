// Corruption of every file type of a checkpoint: cairn's default layout (OCDBT + zstd, with cairn's checksums) and
// checkpoints Orbax wrote (the fixtures, copied before they are damaged). For each file: bytes flipped (every byte
// of a small file, a sample of a large one), truncated, deleted, replaced with garbage. restore() and metadata()
// then either return exactly what was saved or throw a cairn::Error; for cairn's checkpoints the error names the
// damaged file. Never a crash, a hang, another exception, or wrong data.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "cairn/cairn.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using cairn::testing::Iota;
using cairn::testing::Noise;
using cairn::testing::Slurp;
using cairn::testing::Spit;


struct Outcome {
  int exact = 0;     // returned exactly what was saved
  int detected = 0;  // threw a cairn::Error
  int named = 0;     // ... whose message names the damaged file
  int undetectable = 0;  // other data, from a file Orbax's format gives no check (see OrbaxFixtures)
};

struct Subject {
  fs::path dir;  // the checkpoint to damage (a copy)
  std::function<Tree()> restore;
  std::function<StepMetadata()> metadata;
  bool require_naming;  // cairn's own checkpoints: every error must name the file
  // Files whose damage the format cannot detect (nothing for cairn's checkpoints).
  std::function<bool(const fs::path&)> unprotected = [](const fs::path&) { return false; };
};

// Whether `message` names `file` (by its path inside the checkpoint, or its full path).
bool Names(const std::string& message, const fs::path& file, const fs::path& dir) {
  return message.find(file.lexically_relative(dir).string()) != std::string::npos ||
         message.find(file.string()) != std::string::npos;
}

bool SameMetadata(const StepMetadata& a, const StepMetadata& b) {
  return a.item_metadata == b.item_metadata && a.custom_metadata == b.custom_metadata &&
         a.item_handlers == b.item_handlers && a.init_timestamp_nsecs == b.init_timestamp_nsecs &&
         a.commit_timestamp_nsecs == b.commit_timestamp_nsecs && a.metrics == b.metrics;
}

// Runs restore() and metadata() on the damaged checkpoint and classifies what they did.
void Check(const Subject& subject, const Tree& expected, const StepMetadata& expected_meta, const fs::path& file,
           const std::string& damage, Outcome* outcome) {
  for (int call = 0; call < 2; ++call) {
    const char* name = call == 0 ? "restore" : "metadata";
    try {
      const bool same = call == 0 ? subject.restore() == expected : SameMetadata(subject.metadata(), expected_meta);
      if (same) {
        ++outcome->exact;
      } else if (subject.unprotected(file)) {
        ++outcome->undetectable;
      } else {
        ADD_FAILURE() << "WRONG " << (call == 0 ? "DATA" : "METADATA") << " from " << name << " after " << damage
                      << " of " << file;
      }
    } catch (const Error& e) {
      ++outcome->detected;
      if (Names(e.what(), file, subject.dir)) {
        ++outcome->named;
      } else if (subject.require_naming) {
        ADD_FAILURE() << name << " after " << damage << " of " << file << ": the error does not name the file: "
                      << e.what();
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << name << " after " << damage << " of " << file << " threw a non-cairn exception: " << e.what();
    }
  }
}

// Every damage to every regular file below the checkpoint, one at a time (each file restored afterwards).
Outcome DamageEveryFile(const Subject& subject) {
  const Tree expected = subject.restore();
  const StepMetadata expected_meta = subject.metadata();
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(subject.dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::mt19937 rng(7);
  Outcome total;
  for (const auto& file : files) {
    SCOPED_TRACE(file.string());
    const std::string original = Slurp(file);
    Outcome outcome;
    auto damage = [&](const std::string& data, const std::string& what) {
      Spit(file, data);
      Check(subject, expected, expected_meta, file, what, &outcome);
    };
    // Flips: every byte of a small file, 96 evenly spread bytes (plus the first and last 16) of a larger one.
    std::vector<size_t> positions;
    if (original.size() <= 512) {
      for (size_t i = 0; i < original.size(); ++i) positions.push_back(i);
    } else {
      for (size_t i = 0; i < 16; ++i) positions.push_back(i), positions.push_back(original.size() - 1 - i);
      for (size_t i = 0; i < 96; ++i) positions.push_back(original.size() * i / 96);
    }
    for (size_t pos : positions) {
      std::string damaged = original;
      damaged[pos] = static_cast<char>(damaged[pos] ^ (pos % 3 == 0 ? 0x01 : pos % 3 == 1 ? 0x80 : 0x5a));
      damage(damaged, "flipping byte " + std::to_string(pos));
    }
    for (size_t length : {size_t{0}, original.size() / 2, original.size() > 0 ? original.size() - 1 : 0}) {
      damage(original.substr(0, length), "truncating to " + std::to_string(length) + " bytes");
    }
    std::string garbage(original.size(), '\0');
    for (auto& c : garbage) c = static_cast<char>(rng());
    damage(garbage, "replacing with garbage");
    damage("{}", "replacing with {}");
    fs::remove(file);
    Check(subject, expected, expected_meta, file, "deleting", &outcome);
    Spit(file, original);
    total.exact += outcome.exact;
    total.detected += outcome.detected;
    total.named += outcome.named;
    total.undetectable += outcome.undetectable;
  }
  // Intact again.
  EXPECT_EQ(subject.restore(), expected);
  return total;
}

TEST(CorruptionEveryFile, CairnDefaultLayout) {
  cairn::testing::ScratchDir tmp;
  const Tree state = Tree::Dict({{"params", Tree::Dict({{"big", Noise({32, 40})}, {"small", Iota({4}, DType::kInt32)}})},
                                 {"step", Tree::Scalar(int64_t{7})},
                                 {"name", Tree::String("run")}});
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>());  // OCDBT + zstd, checksums on
  ckptr.save(tmp / "ckpt", args::PyTreeSave{state}, {.custom_metadata = {{"note", "x"}}});
  // Every file type of the layout is there.
  for (const char* name : {"_CHECKPOINT_METADATA", "cairn_checkpoint_metadata.crc32c", "commit_success.txt",
                           "_METADATA", "_sharding", "_strings.json", "array_metadatas/process_0", "manifest.ocdbt",
                           "ocdbt.process_0/manifest.ocdbt", "cairn_checksums/process_0"}) {
    ASSERT_TRUE(fs::exists(tmp / "ckpt" / name)) << name;
  }
  ASSERT_FALSE(fs::is_empty(tmp / "ckpt/d"));
  ASSERT_FALSE(fs::is_empty(tmp / "ckpt/ocdbt.process_0/d"));
  Subject subject{tmp / "ckpt", [&] { return ckptr.restore(tmp / "ckpt"); }, [&] { return ckptr.metadata(tmp / "ckpt"); },
                  /*require_naming=*/true};
  Outcome o = DamageEveryFile(subject);
  std::printf("cairn layout: %d damaged reads: %d exact, %d errors (%d naming the file)\n", o.exact + o.detected,
              o.exact, o.detected, o.named);
  EXPECT_GT(o.detected, o.exact);
}

// The same checkpoint through a CheckpointManager step (composite layout: the item in `default/`, metrics).
TEST(CorruptionEveryFile, CairnManagerStep) {
  cairn::testing::ScratchDir tmp;
  const Tree state = Tree::Dict({{"w", Noise({16, 40})}, {"step", Tree::Scalar(int64_t{3})}});
  CheckpointManagerOptions options;
  options.enable_async_checkpointing = false;
  {
    CheckpointManager mngr(tmp / "run", options);
    mngr.save(3, args::StandardSave{state}, {.metrics = {{"loss", 0.5}}});
  }
  options.read_only = true;
  CheckpointManager reader(tmp / "run", options);
  Subject subject{tmp / "run/3", [&] { return reader.restore(3); }, [&] { return reader.metadata(3); },
                  /*require_naming=*/true};
  Outcome o = DamageEveryFile(subject);
  std::printf("manager step: %d damaged reads: %d exact, %d errors (%d naming the file)\n", o.exact + o.detected,
              o.exact, o.detected, o.named);
  EXPECT_GT(o.detected, 0);
}

// Orbax's own checkpoints (no cairn checksums): never a crash or another exception. Wrong data is checked too:
// Orbax's JSON metadata files carry no checksum, so a flip that leaves valid JSON of another meaning can only be
// caught by the checks on form; the OCDBT nodes that hold these small arrays inline carry CRC-32Cs.
TEST(CorruptionEveryFile, OrbaxFixtures) {
  const fs::path fixtures = cairn::testing::FixturesDir();
  struct Case {
    fs::path source;
    bool composite;
  };
  const std::vector<Case> cases = {
      {fixtures / "v0_checkpoints/direct_checkpoint/checkpoint_metadata_present/pytree_checkpointable_has_metadata", false},
      {fixtures / "v1_checkpoints/composite_checkpoint/checkpoint_metadata_present/pytree_checkpointable_has_metadata", true},
      {fixtures / "zarr_v2/aggregate_some.checkpoint", false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.source.string());
    ASSERT_TRUE(fs::is_directory(c.source));
    cairn::testing::ScratchDir tmp;
    fs::copy(c.source, tmp / "ckpt", fs::copy_options::recursive);
    std::unique_ptr<Checkpointer> ckptr;
    if (c.composite) {
      // Handlers taken from _CHECKPOINT_METADATA, as a restore without args does.
      ckptr = std::make_unique<Checkpointer>(std::make_unique<CompositeCheckpointHandler>());
    } else {
      ckptr = std::make_unique<Checkpointer>(std::make_unique<StandardCheckpointHandler>());
    }
    // What Orbax's format cannot check: its JSON files (the step's _CHECKPOINT_METADATA, a JSON item, a zarr
    // .zarray), the legacy msgpack `checkpoint` file and the chunk files of the non-OCDBT layout carry no checksum,
    // so a flip that still parses reads as other data; and a missing _METADATA is rebuilt from the arrays (as
    // Orbax checkpoints without one need). Everything in an OCDBT database
    // (manifest, B+tree nodes; these small arrays are stored inline in the nodes) is checked.
    const fs::path root = tmp / "ckpt";
    Subject subject{root, [&] { return ckptr->restore(root); }, [&] { return ckptr->metadata(root); },
                    /*require_naming=*/false, [&](const fs::path& file) {
                      const std::string name = file.filename().string();
                      const std::string parent = file.parent_path().filename().string();
                      const bool chunk = !name.empty() && name.find_first_not_of("0123456789.") == std::string::npos;
                      return name == "_CHECKPOINT_METADATA" || name == "checkpoint" || name == "data.json" ||
                             name == ".zarray" || (chunk && parent != "d") ||
                             name == "_METADATA";
                    }};
    Outcome o = DamageEveryFile(subject);
    std::printf("%s: %d damaged reads: %d exact, %d errors (%d naming the file), %d undetectable in Orbax's format\n",
                c.source.lexically_relative(fixtures).string().c_str(), o.exact + o.detected + o.undetectable,
                o.exact, o.detected, o.named, o.undetectable);
    EXPECT_GT(o.detected, 0);
  }
}

}  // namespace
}  // namespace cairn
