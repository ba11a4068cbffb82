// A handler that wraps another, written as a user would write it, works on the checkpointer's file system: the
// directory each call gets carries it, so there is nothing the wrapper could forget to hand on.
#include <gtest/gtest.h>

#include <filesystem>

#include "cairn/cairn.h"
#include "io/fault_injecting_file_system.h"

namespace cairn {
namespace {

// Counts calls and forwards to a StandardCheckpointHandler it owns: nothing but Orbax's five methods.
class CountingHandler : public CheckpointHandler {
 public:
  void save(const HandlerDirectory& directory, const CheckpointArgs& args) override {
    ++saves;
    inner_.save(directory, args);
  }
  Tree restore(const HandlerDirectory& directory, const CheckpointArgs* args) override {
    return inner_.restore(directory, args);
  }
  Tree metadata(const HandlerDirectory& directory) override { return inner_.metadata(directory); }
  void finalize(const HandlerDirectory& directory) override { inner_.finalize(directory); }
  std::string typestr() const override { return inner_.typestr(); }
  int saves = 0;

 private:
  StandardCheckpointHandler inner_;
};

Tree State() {
  return Tree::Dict({{"w", Array::FromVector<float>({2, 2}, {1, 2, 3, 4})}, {"step", Tree::Scalar(int64_t{7})}});
}

TEST(WrappingHandler, InnerHandlerUsesTheCheckpointersFileSystem) {
  auto memory = NewInMemoryFileSystem();
  auto faulty = std::make_shared<io::FaultInjectingFileSystem>(memory);
  CheckpointerOptions options;
  options.file_system = faulty;
  auto handler = std::make_unique<CountingHandler>();
  CountingHandler& counting = *handler;
  Checkpointer ckptr(std::move(handler), options);

  ckptr.save("/wrapped/1", args::StandardSave{State()});
  EXPECT_EQ(counting.saves, 1);
  EXPECT_FALSE(std::filesystem::exists("/wrapped"));  // nothing went to the default (POSIX) file system
  EXPECT_TRUE(memory->Exists("/wrapped/1/_METADATA"));
  EXPECT_EQ(ckptr.restore("/wrapped/1"), State());

  // The inner handler's own reads go through the checkpointer's file system too: fail them, and restore fails.
  faulty->FailNth(0, [](io::FsOp op, const std::filesystem::path&) { return op == io::FsOp::kOpenRead; });
  EXPECT_THROW(ckptr.restore("/wrapped/1"), IoError);
  EXPECT_TRUE(faulty->fired());
}

TEST(WrappingHandler, CompositeItemsOfAManagerUseItsFileSystem) {
  auto memory = NewInMemoryFileSystem();
  CheckpointManagerOptions options;
  options.file_system = memory;
  options.enable_async_checkpointing = false;
  CheckpointHandlerMap handlers;
  handlers["state"] = std::make_unique<CountingHandler>();
  CheckpointManager mngr("/cairn_wrapped_run", options, std::move(handlers));
  mngr.save(1, args::Composite{{"state", args::Item(args::StandardSave{State()})}});
  EXPECT_FALSE(std::filesystem::exists("/cairn_wrapped_run"));
  EXPECT_TRUE(memory->Exists("/cairn_wrapped_run/1/state/_METADATA"));
  EXPECT_EQ(mngr.restore(1)["state"], State());
}

TEST(HandlerDirectory, SubdirectoriesKeepTheFileSystemAndFollowTheDeltaBase) {
  auto memory = NewInMemoryFileSystem();
  MultiprocessingOptions mp;
  mp.primary_host = 0;
  const HandlerDirectory dir("/a", memory, mp, FileOptions{0750}, HandlerDirectory::DeltaBase{"/base/a", 0.5});
  const HandlerDirectory sub = dir / "item";
  EXPECT_EQ(sub.path(), std::filesystem::path("/a/item"));
  EXPECT_EQ(sub.fs_ptr(), memory);
  EXPECT_EQ(sub.file_options().path_permission_mode, 0750u);
  ASSERT_TRUE(sub.delta_base());
  EXPECT_EQ(sub.delta_base()->item_dir, std::filesystem::path("/base/a/item"));
  EXPECT_EQ(sub.delta_base()->max_changed_fraction, 0.5);
  // Without a base to share with (hashes only), the subdirectory has none either.
  const HandlerDirectory hashes_only("/a", memory, mp, {}, HandlerDirectory::DeltaBase{});
  EXPECT_TRUE((hashes_only / "item").delta_base()->item_dir.empty());
  EXPECT_FALSE(HandlerDirectory("/a").delta_base());
  EXPECT_EQ(&HandlerDirectory("/a").fs(), &*FileSystem::Default());
}

}  // namespace
}  // namespace cairn
