// Fault injection through the FileSystem seam, for asynchronous saves (AsyncCheckpointer, and a CheckpointManager
// saving asynchronously) and for restores: each I/O call of a save (open, write, fsync, close, mkdir, rename,
// remove, fsync of a directory; EIO and ENOSPC in turn) fails in turn, on the real (POSIX) file system. Every run
// ends with a clear error from wait_until_finished() or the next save(), no committed checkpoint, the earlier
// checkpoints intact, and - once cleaned up - no leaked thread, file descriptor or temporary file.
//
// (The synchronous sweep is in checkpointer_test.cc.) CAIRN_FAULT_SWEEP=full (`make stress`) also sweeps the
// non-OCDBT and zarr3 layouts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <thread>

#include "cairn/cairn.h"
#include "io/fault_injecting_file_system.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using cairn::testing::Iota;

bool FullSweep() {
  const char* env = std::getenv("CAIRN_FAULT_SWEEP");
  return env && std::string(env) == "full";
}

using cairn::testing::ScratchDir;

size_t CountEntries(const char* dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++n;
  return n;
}
size_t OpenFds() { return CountEntries("/proc/self/fd"); }
size_t Threads() { return CountEntries("/proc/self/task"); }

// Every `*.orbax-checkpoint-tmp*` file or directory under `root`.
std::vector<std::string> Leftovers(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.path().filename().string().find(".orbax-checkpoint-tmp") != std::string::npos) {
      out.push_back(entry.path().string());
    }
  }
  return out;
}

bool Mutating(io::FsOp op, const fs::path&) {
  return op != io::FsOp::kStat && op != io::FsOp::kOpenRead && op != io::FsOp::kRead && op != io::FsOp::kListDir;
}

Tree StateAt(int64_t step) {
  Array w = Iota({48, 40});
  for (auto& v : w.mutable_data<float>()) v += static_cast<float>(step);
  return Tree::Dict({{"params", Tree::Dict({{"w", w}, {"b", Iota({7}, DType::kBFloat16)}})},
                     {"step", Tree::Scalar(step)},
                     {"name", Tree::String("run " + std::to_string(step))}});
}

struct Layout {
  const char* name;
  PyTreeCheckpointHandlerOptions options;
};

std::vector<Layout> Layouts() {
  std::vector<Layout> layouts{{"ocdbt+zstd", {}}};
  if (FullSweep()) {
    PyTreeCheckpointHandlerOptions dirs;
    dirs.use_ocdbt = false;
    PyTreeCheckpointHandlerOptions zarr3;
    zarr3.use_zarr3 = true;
    layouts.push_back({"directories", dirs});
    layouts.push_back({"zarr3", zarr3});
  }
  return layouts;
}

// How the failure of a background save is learnt: wait_until_finished(), check_for_errors() once it is done, or
// the next save().
enum class Surface { kWait, kCheck, kNextSave };

TEST(AsyncFaultInjection, EveryFailedCallOfAnAsyncSave) {
  int swept = 0;
  for (const Layout& layout : Layouts()) {
    for (bool background_mkdir : {true, false}) {
      SCOPED_TRACE(std::string(layout.name) + (background_mkdir ? ", directories created in the background"
                                                                : ", directories created by save()"));
      ScratchDir dir;
      auto faulty = std::make_shared<io::FaultInjectingFileSystem>(FileSystem::Default());
      CheckpointerOptions options;
      options.file_system = faulty;
      AsyncOptions async;
      async.create_directories_asynchronously = background_mkdir;
      AsyncCheckpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(layout.options), async, options);
      ckptr.save(dir / "1", args::PyTreeSave{StateAt(1)});
      ASSERT_EQ(ckptr.restore(dir / "1"), StateAt(1));

      faulty->FailNth(-1, Mutating);
      ckptr.save(dir / "2", args::PyTreeSave{StateAt(2)});
      ckptr.wait_until_finished();
      const int64_t calls = faulty->matched_calls();
      ASSERT_GT(calls, 20);
      faulty->FailNth(-1, nullptr);
      fs::remove_all(dir / "2");
      // The steady state: the thread pool is up, nothing is in flight.
      const size_t fds = OpenFds(), threads = Threads();

      for (int64_t n = 0; n < calls; ++n) {
        const Surface surface = static_cast<Surface>(n % 3);
        faulty->FailNth(n, Mutating, n % 2 ? ENOSPC : EIO);
        std::string error;
        try {
          ckptr.save(dir / "2", args::PyTreeSave{StateAt(2)});
          if (surface == Surface::kWait) {
            ckptr.wait_until_finished();
          } else {
            while (ckptr.is_saving_in_progress()) std::this_thread::sleep_for(std::chrono::microseconds(200));
            if (surface == Surface::kCheck) {
              ckptr.check_for_errors();
            } else {
              faulty->FailNth(-1, nullptr);  // (nothing is in flight: safe to disarm)
              ckptr.save(dir / "3", args::PyTreeSave{StateAt(3)});  // must throw the previous save's failure
              ckptr.wait_until_finished();
              ADD_FAILURE() << "call " << n << ": the next save did not report the failure";
              fs::remove_all(dir / "3");
            }
          }
        } catch (const Error& e) {
          error = e.what();
        }
        const bool fired = faulty->fired();
        faulty->FailNth(-1, nullptr);
        if (!fired) {
          // The call index was not reached this time (chunks are written in parallel, so the order varies);
          // then the save succeeded.
          ckptr.wait_until_finished();
          fs::remove_all(dir / "2");
          continue;
        }
        ++swept;
        EXPECT_NE(error.find("injected fault"), std::string::npos) << "call " << n << ": " << error;
        EXPECT_FALSE(fs::exists(dir / "2")) << "call " << n << ": a failed save committed";
        EXPECT_FALSE(fs::exists(dir / "3")) << "call " << n;
        EXPECT_EQ(ckptr.restore(dir / "1"), StateAt(1)) << "call " << n;
        EXPECT_EQ(Leftovers(dir.path()), std::vector<std::string>{}) << "call " << n;
        EXPECT_EQ(OpenFds(), fds) << "call " << n << ": file descriptors leaked";
        EXPECT_EQ(Threads(), threads) << "call " << n << ": threads leaked";
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
  std::printf("async fault sweep: %d failed saves checked\n", swept);
  EXPECT_GT(swept, 40);
}

// The manager saving asynchronously, keeping the latest 2: every call of a save and of the deletion of the step
// it pushes out fails in turn. The failure surfaces from wait_until_finished() or close(); the steps the manager
// then lists all restore exactly; a fresh manager lists the same steps, and its clean-up leaves no temporary
// directory; no thread (finalize, background deleter) or file descriptor outlives the manager.
TEST(AsyncFaultInjection, EveryFailedCallOfAManagerSave) {
  ScratchDir dir;
  const fs::path root = dir / "run";
  auto faulty = std::make_shared<io::FaultInjectingFileSystem>(FileSystem::Default());
  auto make_options = [&](bool background_delete) {
    CheckpointManagerOptions o;
    o.max_to_keep = 2;
    o.enable_async_checkpointing = true;
    o.enable_background_delete = background_delete;
    o.cleanup_tmp_directories = true;
    o.file_system = faulty;
    return o;
  };
  int swept = 0;
  int64_t step = 0;
  for (bool background_delete : {false, true}) {
    SCOPED_TRACE(background_delete ? "background delete" : "delete after commit");
    int64_t calls = 0;
    {
      CheckpointManager mngr(root, make_options(background_delete));
      for (int i = 0; i < 2; ++i, ++step) mngr.save(step, args::PyTreeSave{StateAt(step)});
      mngr.wait_until_finished();
      faulty->FailNth(-1, Mutating);
      mngr.save(step, args::PyTreeSave{StateAt(step)});
      mngr.close();
      calls = faulty->matched_calls();
      faulty->FailNth(-1, nullptr);
      ++step;
    }
    ASSERT_GT(calls, 20);
    const size_t threads = Threads(), fds = OpenFds();  // no manager alive
    for (int64_t n = 0; n < calls; ++n, ++step) {
      std::string error;
      std::vector<int64_t> before, after;
      {
        CheckpointManager mngr(root, make_options(background_delete));
        before = mngr.all_steps();
        faulty->FailNth(n, Mutating, n % 2 ? ENOSPC : EIO);
        try {
          mngr.save(step, args::PyTreeSave{StateAt(step)});
          mngr.wait_until_finished();
        } catch (const Error& e) {
          error = e.what();
        }
        try {
          mngr.close();  // a failed background deletion surfaces here
        } catch (const Error& e) {
          if (error.empty()) error = e.what();
        }
        const bool fired = faulty->fired();
        faulty->FailNth(-1, nullptr);
        after = mngr.all_steps();
        if (!fired) continue;
        ++swept;
        EXPECT_NE(error.find("injected fault"), std::string::npos) << "call " << n << ": " << error;
        // Either the save failed (the step is not listed, the earlier ones are all still there) or it committed
        // and only the deletion of an old step failed (the new step is listed; the old one may be too).
        const bool committed = std::find(after.begin(), after.end(), step) != after.end();
        if (!committed) {
          EXPECT_EQ(after, before) << "call " << n << ": " << error;
          EXPECT_FALSE(fs::exists(root / std::to_string(step))) << "call " << n;
        }
      }
      // A fresh manager sees exactly what the failed one held, and cleans up what the failure left.
      {
        CheckpointManager fresh(root, make_options(false));
        EXPECT_EQ(fresh.all_steps(), after) << "call " << n;
        for (int64_t s : after) EXPECT_EQ(fresh.restore(s), StateAt(s)) << "call " << n << ", step " << s;
      }
      EXPECT_EQ(Leftovers(root), std::vector<std::string>{}) << "call " << n;
      EXPECT_EQ(Threads(), threads) << "call " << n << ": threads leaked";
      EXPECT_EQ(OpenFds(), fds) << "call " << n << ": file descriptors leaked";
      if (::testing::Test::HasFailure()) return;
    }
  }
  std::printf("manager fault sweep: %d failed saves checked\n", swept);
  EXPECT_GT(swept, 40);
}

// Every read call of a restore fails in turn: each restore throws the injected error (or, for a call whose failure
// is not needed, returns the exact data); nothing leaks.
TEST(RestoreFaultInjection, EveryFailedReadCall) {
  for (const Layout& layout : Layouts()) {
    SCOPED_TRACE(layout.name);
    ScratchDir dir;
    auto faulty = std::make_shared<io::FaultInjectingFileSystem>(FileSystem::Default());
    CheckpointerOptions options;
    options.file_system = faulty;
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(layout.options), options);
    ckptr.save(dir / "1", args::PyTreeSave{StateAt(1)});
    ASSERT_EQ(ckptr.restore(dir / "1"), StateAt(1));
    auto reading = [](io::FsOp op, const fs::path&) { return !Mutating(op, {}); };
    faulty->FailNth(-1, reading);
    ckptr.restore(dir / "1");
    ckptr.metadata(dir / "1");
    const int64_t calls = faulty->matched_calls();
    faulty->FailNth(-1, nullptr);
    const size_t fds = OpenFds();
    for (int64_t n = 0; n < calls; ++n) {
      faulty->FailNth(n, reading);
      try {
        EXPECT_EQ(ckptr.restore(dir / "1"), StateAt(1)) << "call " << n;
        ckptr.metadata(dir / "1");
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("injected fault"), std::string::npos) << "call " << n << ": " << e.what();
      }
      faulty->FailNth(-1, nullptr);
      EXPECT_EQ(OpenFds(), fds) << "call " << n;
    }
    EXPECT_EQ(ckptr.restore(dir / "1"), StateAt(1));
  }
}

}  // namespace
}  // namespace cairn
