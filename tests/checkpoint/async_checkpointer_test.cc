#include "cairn/async_checkpointer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>

#include "cairn/cairn.h"
#include "checkpoint/snapshot.h"
#include "io/fault_injecting_file_system.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using cairn::testing::Iota;
using cairn::testing::TempDir;

Tree State(float offset = 0) {
  Array w = Iota({64, 32});
  for (auto& v : w.mutable_data<float>()) v += offset;
  return Tree::Dict({{"w", w}, {"step", Tree::Scalar(int64_t{7})}, {"b", Iota({8}, DType::kBFloat16)}});
}

// A handler whose save blocks until released, to hold a save in flight.
class GatedHandler : public StandardCheckpointHandler {
 public:
  explicit GatedHandler(std::shared_future<void> gate) : gate_(std::move(gate)) {}
  void save(const HandlerDirectory& directory, const CheckpointArgs& args) override {
    started = true;
    gate_.wait();
    StandardCheckpointHandler::save(directory, args);
  }
  std::atomic<bool> started{false};

 private:
  std::shared_future<void> gate_;
};

TEST(AsyncCheckpointer, SavesInTheBackground) {
  TempDir dir;
  std::promise<void> release;
  auto handler = std::make_unique<GatedHandler>(release.get_future().share());
  auto* gated = handler.get();
  AsyncCheckpointer ckptr(std::move(handler));
  ckptr.save(dir / "1", args::StandardSave{State()});
  EXPECT_TRUE(ckptr.is_saving_in_progress());
  EXPECT_FALSE(fs::exists(dir / "1"));  // not committed while the write is held
  while (!gated->started) std::this_thread::yield();
  release.set_value();
  ckptr.wait_until_finished();
  EXPECT_FALSE(ckptr.is_saving_in_progress());
  EXPECT_TRUE(fs::exists(dir / "1/commit_success.txt"));
  EXPECT_EQ(ckptr.restore(dir / "1"), State());
}

TEST(AsyncCheckpointer, CallerMayChangeItsArraysOnceSaveReturns) {
  TempDir dir;
  AsyncCheckpointer ckptr(std::make_unique<StandardCheckpointHandler>());
  Tree state = State();
  std::vector<float> lent(16, 1.0f);
  state["lent"] = Array::FromBorrowed(lent.data(), DType::kFloat32, {16});
  const Tree expected = Tree::Dict({{"w", State()["w"].array().Copy()},
                                    {"step", Tree::Scalar(int64_t{7})},
                                    {"b", State()["b"]},
                                    {"lent", Array::FromVector<float>({16}, std::vector<float>(16, 1.0f))}});
  ckptr.save(dir / "1", args::StandardSave{state});
  // Overwrite everything the caller owns or lent, at once.
  for (auto& v : state["w"].array().mutable_data<float>()) v = -1;
  std::fill(lent.begin(), lent.end(), -1.0f);
  ckptr.wait_until_finished();
  EXPECT_EQ(ckptr.restore(dir / "1"), expected);
}

// The shards of a ShardedArray are the caller's buffers as much as a plain array's: staged before save() returns.
TEST(AsyncCheckpointer, CallerMayChangeItsShardsOnceSaveReturns) {
  TempDir dir;
  AsyncCheckpointer ckptr(std::make_unique<StandardCheckpointHandler>());
  std::vector<float> top(8, 1.0f), bottom(8, 2.0f);
  std::vector<Shard> shards = {{Box{{0, 0}, {2, 4}}, 0, Array::FromBorrowed(top.data(), DType::kFloat32, {2, 4})},
                               {Box{{2, 0}, {2, 4}}, 0, Array::FromBorrowed(bottom.data(), DType::kFloat32, {2, 4})}};
  ckptr.save(dir / "1", args::StandardSave{Tree::Dict({{"x", Tree(ShardedArray(DType::kFloat32, {4, 4}, shards))}})});
  std::fill(top.begin(), top.end(), -1.0f);
  std::fill(bottom.begin(), bottom.end(), -1.0f);
  ckptr.wait_until_finished();
  std::vector<float> expected(8, 1.0f);
  expected.resize(16, 2.0f);
  EXPECT_EQ(ckptr.restore(dir / "1")["x"].array(), Array::FromVector<float>({4, 4}, expected));
}

TEST(AsyncCheckpointer, SharedImmutableArraysAreNotCopied) {
  auto bytes = std::make_shared<std::vector<float>>(1 << 20, 2.0f);
  Array shared = Array::FromShared(std::shared_ptr<const void>(bytes, bytes->data()), DType::kFloat32, {1 << 20});
  Array owned = Iota({16});
  checkpoint::StagingPool pool;
  Tree snapshot = checkpoint::SnapshotTree(Tree::Dict({{"s", shared}, {"o", owned}}), pool);
  EXPECT_EQ(snapshot["s"].array().bytes().data(), shared.bytes().data());
  EXPECT_NE(snapshot["o"].array().bytes().data(), owned.bytes().data());
  EXPECT_EQ(snapshot["o"].array(), owned);

  TempDir dir;
  AsyncCheckpointer ckptr(std::make_unique<StandardCheckpointHandler>());
  auto start = std::chrono::steady_clock::now();
  ckptr.save(dir / "1", args::StandardSave{Tree::Dict({{"s", shared}})});
  auto blocked = std::chrono::steady_clock::now() - start;
  EXPECT_LT(blocked, std::chrono::milliseconds(500));  // generous: no copy, no I/O before returning
  ckptr.wait_until_finished();
  EXPECT_EQ(ckptr.restore(dir / "1")["s"].array(), shared);
}

TEST(AsyncCheckpointer, StagingBuffersAreReused) {
  checkpoint::StagingPool pool;
  const std::byte* first;
  {
    Tree snapshot = checkpoint::SnapshotTree(Tree::Dict({{"o", Iota({1000})}}), pool);
    first = snapshot["o"].array().bytes().data();
  }
  EXPECT_EQ(pool.cached_bytes(), 4000u);
  Tree again = checkpoint::SnapshotTree(Tree::Dict({{"o", Iota({1000})}}), pool);
  EXPECT_EQ(again["o"].array().bytes().data(), first);
  EXPECT_EQ(pool.cached_bytes(), 0u);
}

// A state that changes shape does not pile up stale staging buffers: a miss frees cached bytes worth its size.
TEST(AsyncCheckpointer, StagingBuffersOfOldShapesAreFreed) {
  checkpoint::StagingPool pool;
  { Tree snapshot = checkpoint::SnapshotTree(Tree::Dict({{"o", Iota({1000})}}), pool); }
  EXPECT_EQ(pool.cached_bytes(), 4000u);
  { Tree snapshot = checkpoint::SnapshotTree(Tree::Dict({{"o", Iota({999})}}), pool); }
  EXPECT_EQ(pool.cached_bytes(), 3996u);  // the 4000-byte buffer was freed for the 3996-byte one
}

TEST(AsyncCheckpointer, BackgroundFailuresSurfaceOnce) {
  auto memory = NewInMemoryFileSystem();
  auto faulty = std::make_shared<io::FaultInjectingFileSystem>(memory);
  CheckpointerOptions options;
  options.file_system = faulty;
  AsyncCheckpointer ckptr(std::make_unique<StandardCheckpointHandler>(), {}, options);
  faulty->FailNth(0, [](io::FsOp op, const fs::path& path) {
    return op == io::FsOp::kRename && path.string().find("orbax-checkpoint-tmp") != std::string::npos;
  });
  ckptr.save("/ckpt/1", args::StandardSave{State()});
  EXPECT_THROW(ckptr.wait_until_finished(), IoError);
  EXPECT_NO_THROW(ckptr.wait_until_finished());  // reported once
  EXPECT_FALSE(memory->Exists("/ckpt/1"));
  EXPECT_FALSE(memory->Exists("/ckpt/1.orbax-checkpoint-tmp"));

  // check_for_errors reports a finished failure without waiting; the next save reports an unreported one.
  faulty->FailNth(0, [](io::FsOp op, const fs::path&) { return op == io::FsOp::kRename; });
  ckptr.save("/ckpt/2", args::StandardSave{State()});
  while (ckptr.is_saving_in_progress()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_THROW(ckptr.check_for_errors(), IoError);
  faulty->FailNth(0, [](io::FsOp op, const fs::path&) { return op == io::FsOp::kRename; });
  ckptr.save("/ckpt/3", args::StandardSave{State()});
  EXPECT_THROW(ckptr.save("/ckpt/4", args::StandardSave{State()}), IoError);
  faulty->FailNth(-1, nullptr);
  ckptr.save("/ckpt/5", args::StandardSave{State()});
  ckptr.wait_until_finished();
  EXPECT_EQ(ckptr.restore("/ckpt/5"), State());
}

TEST(AsyncCheckpointer, TimeoutCommitsNothing) {
  TempDir dir;
  std::promise<void> release;
  auto handler = std::make_unique<GatedHandler>(release.get_future().share());
  auto* gated = handler.get();
  AsyncOptions async;
  async.timeout_secs = 1;
  {
    AsyncCheckpointer ckptr(std::move(handler), async);
    ckptr.save(dir / "1", args::StandardSave{State()});
    auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(ckptr.wait_until_finished(), TimeoutError);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    EXPECT_FALSE(fs::exists(dir / "1"));
    EXPECT_TRUE(gated->started);
  }
  // The stuck save comes back after its checkpointer is gone: it must clean up, not commit.
  release.set_value();
  for (int i = 0; i < 500 && fs::exists(dir / "1.orbax-checkpoint-tmp"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(fs::exists(dir / "1.orbax-checkpoint-tmp"));
  EXPECT_FALSE(fs::exists(dir / "1"));
}

TEST(AsyncCheckpointer, SavesRunInOrderAndRestoreWaits) {
  TempDir dir;
  AsyncCheckpointer ckptr(std::make_unique<StandardCheckpointHandler>());
  for (int step = 0; step < 5; ++step) ckptr.save(dir / std::to_string(step), args::StandardSave{State(step)});
  // A restore right after save() sees the finished checkpoint.
  EXPECT_EQ(ckptr.restore(dir / "4"), State(4));
  for (int step = 0; step < 5; ++step) EXPECT_EQ(ckptr.restore(dir / std::to_string(step)), State(step));
  ckptr.save(dir / "4", args::StandardSave{State(9)}, {.force = true});
  EXPECT_EQ(ckptr.metadata(dir / "4").item_metadata["w"].spec(), (ArraySpec{DType::kFloat32, {64, 32}}));
  EXPECT_EQ(ckptr.restore(dir / "4"), State(9));
  EXPECT_THROW(ckptr.save(dir / "4", args::StandardSave{State()}), AlreadyExistsError);  // synchronous
}

TEST(AsyncCheckpointer, DestructionWaitsForTheSaveInFlight) {
  TempDir dir;
  {
    AsyncCheckpointer ckptr(std::make_unique<StandardCheckpointHandler>());
    ckptr.save(dir / "1", args::StandardSave{State()});
  }
  Checkpointer reader(std::make_unique<StandardCheckpointHandler>());
  EXPECT_EQ(reader.restore(dir / "1"), State());
}

TEST(AsyncCheckpointer, OptionsAndCallbacks) {
  TempDir dir;
  std::vector<std::string> barriers;
  std::mutex mu;
  bool finalized = false;
  AsyncOptions async;
  async.create_directories_asynchronously = false;
  async.barrier_sync_fn = [&](const std::string& key, int64_t timeout_ms) {
    std::lock_guard lock(mu);
    barriers.push_back(key);
    EXPECT_EQ(timeout_ms, 600000);
  };
  async.post_finalization_callback = [&] {
    std::lock_guard lock(mu);
    finalized = true;
    EXPECT_TRUE(fs::exists(dir / "1.orbax-checkpoint-tmp"));  // before the commit rename
  };
  CheckpointerOptions options;
  options.multiprocessing_options.barrier_sync_key_prefix = "run7/";
  AsyncCheckpointer ckptr(std::make_unique<StandardCheckpointHandler>(), async, options);
  ckptr.save(dir / "1", args::StandardSave{State()});
  ckptr.close();
  std::lock_guard lock(mu);
  EXPECT_TRUE(finalized);
  EXPECT_EQ(barriers, (std::vector<std::string>{"run7/save_start", "run7/async_write_complete",
                                                "run7/async_commit_complete"}));
}

TEST(StandardCheckpointer, TheShorthand) {
  TempDir dir;
  StandardCheckpointer ckptr;
  ckptr.save(dir / "1", State(), {.custom_metadata = {{"epoch", 2}}});
  EXPECT_EQ(ckptr.restore(dir / "1"), State());
  Tree target = Tree::Dict({{"w", ArraySpec{DType::kFloat64, {64, 40}}},
                            {"step", ArraySpec{DType::kInt32, {}}},
                            {"b", ArraySpec{DType::kFloat32, {8}}}});
  Tree loose = ckptr.restore(dir / "1", target, {.strict = false});
  EXPECT_EQ(loose["w"].array().shape(), (Shape{64, 40}));
  EXPECT_THROW(ckptr.restore(dir / "1", target), InvalidArgumentError);
  EXPECT_EQ(ckptr.metadata(dir / "1").custom_metadata["epoch"], 2);
  ckptr.save(dir / "1", State(1), {.force = true});
  EXPECT_EQ(ckptr.restore(dir / "1"), State(1));
}

}  // namespace
}  // namespace cairn
