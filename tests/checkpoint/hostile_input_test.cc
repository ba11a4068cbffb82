// Hostile checkpoints: symbolic links planted inside a checkpoint (to files and directories outside it, to /etc, in
// a loop) are refused on read with a CorruptionError naming the link, never followed; deletions and the clean-up
// of unfinished saves unlink them, never touching what they point to; a save never writes through one.
#include <gtest/gtest.h>

#include <fstream>

#include "cairn/cairn.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using cairn::testing::Iota;

Tree State(int64_t step) {
  return Tree::Dict({{"params", Tree::Dict({{"w", Iota({32, 40})}, {"b", Iota({5}, DType::kInt32)}})},
                     {"step", Tree::Scalar(step)}});
}

// An outside directory with a file in it, to check that nothing there is read, changed or deleted.
struct Outside {
  explicit Outside(const fs::path& dir) : dir(dir) {
    fs::create_directories(dir);
    std::ofstream(dir / "secret") << "do not touch";
  }
  bool intact() const {
    std::ifstream in(dir / "secret");
    std::string s((std::istreambuf_iterator<char>(in)), {});
    return s == "do not touch";
  }
  fs::path dir;
};

void ExpectRefused(const std::function<void()>& read, const fs::path& link) {
  try {
    read();
    ADD_FAILURE() << "a read followed the symbolic link " << link;
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find(link.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
  }
}

TEST(HostileInput, SymlinksInsideACheckpointAreNotFollowed) {
  for (bool ocdbt : {true, false}) {
    SCOPED_TRACE(ocdbt ? "ocdbt" : "directories");
    cairn::testing::TempDir tmp;
    Outside outside(tmp / "outside");
    PyTreeCheckpointHandlerOptions layout;
    layout.use_ocdbt = ocdbt;
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(layout));
    const fs::path ckpt = tmp / "ckpt";
    ckptr.save(ckpt, args::PyTreeSave{State(1)});
    // Each case: replace one path by a link (to a faithful copy outside, so that following it would "work"; to
    // /etc/passwd; to a directory that contains the checkpoint, making a loop), read, put it back.
    std::vector<std::pair<fs::path, std::string>> cases = {{"_METADATA", "copy"}, {"_METADATA", "/etc/passwd"},
                                                           {"_CHECKPOINT_METADATA", "copy"}};
    if (ocdbt) {
      cases.insert(cases.end(), {{"d", "copy"}, {"manifest.ocdbt", "copy"}, {"ocdbt.process_0", "copy"}});
      for (const auto& entry : fs::directory_iterator(ckpt / "d")) cases.push_back({fs::path("d") / entry.path().filename(), "copy"});
    } else {
      cases.insert(cases.end(), {{"params.w", "copy"}, {"params.w/0.0", "copy"}, {"params.b", "loop"}});
    }
    for (const auto& [relative, target] : cases) {
      SCOPED_TRACE(relative.string() + " -> " + target);
      const fs::path path = ckpt / relative;
      const fs::path saved = tmp / "saved";
      fs::rename(path, saved);
      if (target == "copy") {
        const fs::path copy = outside.dir / relative.filename();
        fs::copy(saved, copy, fs::copy_options::recursive);
        fs::create_symlink(copy, path);
      } else if (target == "loop") {
        fs::create_symlink(ckpt, path);
      } else {
        fs::create_symlink(target, path);
      }
      ExpectRefused([&] { ckptr.restore(ckpt); }, path);
      ExpectRefused([&] { ckptr.metadata(ckpt); }, path);
      fs::remove(path);
      fs::rename(saved, path);
      EXPECT_EQ(ckptr.restore(ckpt), State(1));
    }
  }
}

// Deleting a step, replacing a checkpoint (force) and cleaning up unfinished saves remove a planted link, never
// what it points to; a stale temporary directory that is a link is replaced by a real one, never written through.
TEST(HostileInput, DeletionsAndSavesNeverGoThroughSymlinks) {
  cairn::testing::TempDir tmp;
  Outside outside(tmp / "outside");
  const fs::path root = tmp / "run";
  CheckpointManagerOptions options;
  options.max_to_keep = 1;
  options.enable_async_checkpointing = false;
  options.cleanup_tmp_directories = true;
  {
    CheckpointManager mngr(root, options);
    mngr.save(0, args::StandardSave{State(0)});
    fs::create_directory_symlink(outside.dir, root / "0/default/evil");  // in a step that will be deleted
    fs::create_directory_symlink(outside.dir, root / "1.orbax-checkpoint-tmp");  // a "stale save" that is a link
    mngr.save(1, args::StandardSave{State(1)});  // writes step 1 where the link was; deletes step 0
    EXPECT_EQ(mngr.all_steps(), (std::vector<int64_t>{1}));
    EXPECT_EQ(mngr.restore(1), State(1));
  }
  EXPECT_TRUE(outside.intact());
  EXPECT_EQ(std::distance(fs::directory_iterator(outside.dir), fs::directory_iterator{}), 1);
  EXPECT_FALSE(fs::is_symlink(root / "1"));
  // An unfinished save holding a link, cleaned up by the next manager.
  fs::create_directories(root / "7.orbax-checkpoint-tmp/default");
  fs::create_directory_symlink(outside.dir, root / "7.orbax-checkpoint-tmp/default/evil");
  { CheckpointManager again(root, options); }
  EXPECT_FALSE(fs::exists(root / "7.orbax-checkpoint-tmp"));
  EXPECT_TRUE(outside.intact());
  // force replaces a checkpoint that holds a link.
  Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>());
  ckptr.save(tmp / "c", args::StandardSave{State(2)});
  fs::create_directory_symlink(outside.dir, tmp / "c/evil");
  ckptr.save(tmp / "c", args::StandardSave{State(3)}, {.force = true});
  EXPECT_EQ(ckptr.restore(tmp / "c"), State(3));
  EXPECT_TRUE(outside.intact());
  // A manager's metrics file that is a link is not read (the step counts as one without metrics).
  {
    CheckpointManager mngr(root, options);
    mngr.save(2, args::StandardSave{State(2)}, {.metrics = {{"loss", 1.0}}});
    fs::remove(root / "2/metrics/metrics");
    fs::create_symlink("/etc/passwd", root / "2/metrics/metrics");
    EXPECT_EQ(mngr.metrics(2), std::nullopt);
  }
}

// dtype and shape lies in the zarr metadata: a shape whose byte size overflows, a shape claiming more than the
// stored chunks hold, a dtype that disagrees with the data: a cairn::Error, never a crash or wrong data.
TEST(HostileInput, ShapeAndDtypeLies) {
  cairn::testing::TempDir tmp;
  PyTreeCheckpointHandlerOptions layout;
  layout.use_ocdbt = false;         // (the .zarray is a file of its own)
  layout.verify_checksums = false;  // what parsing alone catches
  const Tree state = Tree::Dict({{"w", Iota({32, 40})}});
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(layout));
  ckptr.save(tmp / "ckpt", args::PyTreeSave{state});
  const fs::path zarray = tmp / "ckpt/w/.zarray";
  std::string original;
  {
    std::ifstream in(zarray);
    original.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = original;
    const auto pos = s.find(from);
    EXPECT_NE(pos, std::string::npos) << from << " in " << s;
    s.replace(pos, from.size(), to);
    std::ofstream(zarray, std::ios::trunc) << s;
  };
  const std::vector<std::pair<std::string, std::string>> lies = {
      {"\"shape\":[32,40]", "\"shape\":[9223372036854775807,9223372036854775807]"},  // byte size overflows
      {"\"shape\":[32,40]", "\"shape\":[4611686018427387904,2]"},                    // overflows once in bytes
      {"\"shape\":[32,40]", "\"shape\":[3200,40]"},                                  // more than the chunks hold
      {"\"shape\":[32,40]", "\"shape\":[-32,40]"},
      {"\"<f4\"", "\"<f8\""},                                                        // dtype lies: chunk too short
      {"\"<f4\"", "\"|b1\""},
      {"\"chunks\":[32,40]", "\"chunks\":[0,40]"},
      {"\"chunks\":[32,40]", "\"chunks\":[1099511627776,1099511627776]"},
  };
  for (const auto& [from, to] : lies) {
    SCOPED_TRACE(to);
    replace(from, to);
    for (int call = 0; call < 2; ++call) {
      try {
        Tree restored = call == 0 ? ckptr.restore(tmp / "ckpt") : ckptr.metadata(tmp / "ckpt").item_metadata;
        if (call == 0) {
          EXPECT_EQ(restored, state) << "WRONG DATA";
        }
      } catch (const Error&) {
      }
    }
  }
  std::ofstream(zarray, std::ios::trunc) << original;
  EXPECT_EQ(ckptr.restore(tmp / "ckpt"), state);

  // Sizes that do not overflow but that no machine here holds (4 PiB of array, 160 TiB chunks) are refused before
  // anything is allocated, with an error that says why (not a std::bad_alloc, nor an overcommitted mapping).
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"\"shape\":[32,40]", "\"shape\":[1099511627776,1024]"},
           {"\"chunks\":[32,40]", "\"chunks\":[1099511627776,40]"}}) {
    SCOPED_TRACE(to);
    replace(from, to);
    Tree target = Tree::Dict({{"w", ArraySpec{DType::kFloat32, to.find("shape") != std::string::npos
                                                                   ? Shape{1099511627776, 1024}
                                                                   : Shape{32, 40}}}});
    try {
      ckptr.restore(tmp / "ckpt", args::PyTreeRestore{target});
      ADD_FAILURE() << "restored an array the machine cannot hold";
    } catch (const InvalidArgumentError& e) {
      EXPECT_NE(std::string(e.what()).find("more than this machine's"), std::string::npos) << e.what();
    }
  }
  std::ofstream(zarray, std::ios::trunc) << original;
}

}  // namespace
}  // namespace cairn
