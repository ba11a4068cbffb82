// FileOptions::path_permission_mode: every directory a save creates gets the mode, every file the mode without
// its execute bits (0750 -> 0640), exactly, whatever the umask: sync and async checkpointers, the manager (its
// root, steps, items, metrics, root metadata, todelete directory), OCDBT and per-parameter directory layouts.
// A destination that cannot be written gives a clear error.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cairn/cairn.h"
#include "io/fault_injecting_file_system.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using cairn::testing::Iota;

// Sets the umask for the scope (0 by default: so that nothing but the mode itself decides).
class Umask {
 public:
  explicit Umask(mode_t mask = 0) : old_(::umask(mask)) {}
  ~Umask() { ::umask(old_); }

 private:
  mode_t old_;
};

// Every path below `root` (and `root`) whose mode is not what it should be.
std::vector<std::string> WrongModes(const fs::path& root, uint32_t mode, int* checked) {
  std::vector<std::string> wrong;
  auto check = [&](const fs::path& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return;
    const uint32_t want = S_ISDIR(st.st_mode) ? mode : (mode & 0666u);
    ++*checked;
    if ((st.st_mode & 07777) != want) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " is %04o, expected %04o", st.st_mode & 07777, want);
      wrong.push_back(path.string() + buf);
    }
  };
  check(root);
  for (const auto& entry : fs::recursive_directory_iterator(root)) check(entry.path());
  return wrong;
}

Tree State(int64_t step) {
  return Tree::Dict({{"w", Iota({32, 40})}, {"step", Tree::Scalar(step)}, {"name", Tree::String("x")}});
}

TEST(Permissions, EveryCreatedPathGetsTheMode) {
  Umask umask(0);
  int checked = 0;
  for (uint32_t mode : {0750u, 0700u}) {
    for (bool ocdbt : {true, false}) {
      SCOPED_TRACE(std::string(ocdbt ? "ocdbt" : "directories") + " mode " + std::to_string(mode));
      cairn::testing::TempDir tmp;
      PyTreeCheckpointHandlerOptions layout;
      layout.use_ocdbt = ocdbt;
      CheckpointerOptions options;
      options.file_options.path_permission_mode = mode;
      {
        Checkpointer sync(std::make_unique<PyTreeCheckpointHandler>(layout), options);
        sync.save(tmp / "new_parent/sync", args::PyTreeSave{State(1)});
        sync.save(tmp / "new_parent/sync", args::PyTreeSave{State(2)}, {.force = true});
        EXPECT_EQ(sync.restore(tmp / "new_parent/sync"), State(2));
        AsyncCheckpointer async(std::make_unique<PyTreeCheckpointHandler>(layout), {}, options);
        async.save(tmp / "new_parent/async", args::PyTreeSave{State(1)});
        async.wait_until_finished();
        EXPECT_EQ(WrongModes(tmp / "new_parent", mode, &checked), std::vector<std::string>{});
      }
      // The manager: root, steps, items, metrics, root metadata, and deleted steps moved to todelete_subdir.
      CheckpointManagerOptions m;
      m.file_options.path_permission_mode = mode;
      m.max_to_keep = 1;
      m.todelete_subdir = "trash";
      for (bool async : {true, false}) {
        m.enable_async_checkpointing = async;
        const fs::path root = tmp / (async ? "run_async" : "run_sync");
        CheckpointManager mngr(root, m, std::vector<std::string>{}, nlohmann::json{{"run", 1}});
        for (int64_t step = 0; step < 3; ++step) {
          mngr.save(step, args::PyTreeSave{State(step)}, {.metrics = {{"loss", 0.5}}});
        }
        mngr.close();
        ASSERT_TRUE(fs::exists(root / "trash")) << "no step was moved to the todelete directory";
        ASSERT_TRUE(fs::exists(root / "metadata/_ROOT_METADATA"));
        EXPECT_EQ(WrongModes(root, mode, &checked), std::vector<std::string>{});
      }
    }
  }
  std::printf("permissions: %d paths checked\n", checked);
  EXPECT_GT(checked, 100);
}

// Without path_permission_mode, the umask decides, as for any program.
TEST(Permissions, WithoutTheModeTheUmaskDecides) {
  Umask umask(022);
  cairn::testing::TempDir tmp;
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>());
  ckptr.save(tmp / "1", args::PyTreeSave{State(1)});
  struct stat st;
  ASSERT_EQ(::stat((tmp / "1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(::stat((tmp / "1/_METADATA").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

// A destination whose parent cannot be written: an IoError naming the path (EACCES), nothing created, an earlier
// checkpoint there untouched. Root ignores permission bits, so as root the refusal is injected (EACCES from the
// first mkdir, through the FileSystem seam) instead; the real chmod case runs only as another user.
TEST(Permissions, ReadOnlyDestinationGivesAClearError) {
  cairn::testing::TempDir tmp;
  Checkpointer writer(std::make_unique<PyTreeCheckpointHandler>());
  writer.save(tmp / "ro/1", args::PyTreeSave{State(1)});
  auto faulty = std::make_shared<io::FaultInjectingFileSystem>(FileSystem::Default());
  CheckpointerOptions options;
  options.file_system = faulty;
  const bool root = ::geteuid() == 0;
  if (root) {
    faulty->FailNth(0, [](io::FsOp op, const fs::path&) { return op == io::FsOp::kCreateDir; }, EACCES);
  } else {
    ASSERT_EQ(::chmod((tmp / "ro").c_str(), 0555), 0);
  }
  for (bool async : {false, true}) {
    SCOPED_TRACE(async ? "async" : "sync");
    std::unique_ptr<Checkpointer> ckptr =
        async ? std::make_unique<AsyncCheckpointer>(std::make_unique<PyTreeCheckpointHandler>(), AsyncOptions{}, options)
              : std::make_unique<Checkpointer>(std::make_unique<PyTreeCheckpointHandler>(), options);
    try {
      ckptr->save(tmp / "ro/2", args::PyTreeSave{State(2)});
      if (auto* a = dynamic_cast<AsyncCheckpointer*>(ckptr.get())) a->wait_until_finished();
      ADD_FAILURE() << "a save into a read-only directory succeeded";
    } catch (const IoError& e) {
      EXPECT_EQ(e.error_number(), EACCES);
      EXPECT_NE(std::string(e.what()).find((tmp / "ro/2").string()), std::string::npos) << e.what();
    }
    if (root) faulty->FailNth(0, [](io::FsOp op, const fs::path&) { return op == io::FsOp::kCreateDir; }, EACCES);
  }
  faulty->FailNth(-1, nullptr);
  if (!root) ::chmod((tmp / "ro").c_str(), 0755);
  EXPECT_FALSE(fs::exists(tmp / "ro/2"));
  EXPECT_FALSE(fs::exists(tmp / "ro/2.orbax-checkpoint-tmp"));
  EXPECT_EQ(writer.restore(tmp / "ro/1"), State(1));
  if (root) std::printf("running as root: the read-only destination was simulated (EACCES injected at mkdir)\n");
}

}  // namespace
}  // namespace cairn
