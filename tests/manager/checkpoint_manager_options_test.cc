// CheckpointManager: option checks, callbacks, metrics kept in memory, permissions, Orbax's checkpoints.
#include "cairn/checkpoint_manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

#include "manager_test_util.h"
#include "metadata/checkpoint_metadata.h"
#include "metadata/checksums.h"
#include "metadata/python_json.h"
#include "test_util.h"

namespace cairn {
namespace {

using namespace cairn::testing::manager_test;  // fs, sdp, pp, the fixture and the helpers

TEST(CheckpointManager, OptionsAreValidated) {
  auto fs = NewInMemoryFileSystem();
  auto make = [&](auto tweak) {
    CheckpointManagerOptions o;
    o.file_system = fs;
    tweak(o);
    CheckpointManager m(kRoot, o);
  };
  EXPECT_THROW(make([](auto& o) { o.best_mode = "best"; }), InvalidArgumentError);
  EXPECT_THROW(make([](auto& o) { o.max_to_keep = -1; }), InvalidArgumentError);
  EXPECT_THROW(make([](auto& o) { o.save_interval_steps = -1; }), InvalidArgumentError);
  EXPECT_THROW(make([](auto& o) { o.keep_period = 0; }), InvalidArgumentError);
  EXPECT_THROW(make([](auto& o) { o.step_prefix = "a/b"; }), InvalidArgumentError);
  EXPECT_THROW(make([](auto& o) {
                 o.enable_async_checkpointing = false;
                 o.async_options.post_finalization_callback = [] {};
               }),
               InvalidArgumentError);
  EXPECT_THROW(make([](auto& o) { o.multiprocessing_options.active_processes = std::vector<int>{1}; }),
               InvalidArgumentError);  // the primary is not active
  EXPECT_NO_THROW(make([](auto& o) { o.save_interval_steps = 0; }));
  EXPECT_THROW(CheckpointManager(kRoot, {.file_system = fs}, {}, nlohmann::json::array()), InvalidArgumentError);
}

// (A synchronous manager rejects the callback: see the options test above.)
TEST(CheckpointManager, PostFinalizationCallbackRunsForEachAsyncSave) {
  std::atomic<int> calls{0};
  CheckpointManagerOptions o;
  o.enable_async_checkpointing = true;
  o.file_system = NewInMemoryFileSystem();
  o.async_options.post_finalization_callback = [&] { ++calls; };
  CheckpointManager m(kRoot, o);
  m.save(1, args::StandardSave{StateAt(1)});
  m.save(2, args::StandardSave{StateAt(2)});
  m.wait_until_finished();
  EXPECT_EQ(calls.load(), 2);
}

TEST(CheckpointManager, PreventWriteMetricsKeepsThemInMemoryOnly) {
  auto fs = NewInMemoryFileSystem();
  CheckpointManagerOptions o;
  o.max_to_keep = 1;
  o.best_fn = Loss;
  o.prevent_write_metrics = true;
  o.file_system = fs;
  CheckpointManager m(kRoot, o);
  m.save(1, args::StandardSave{StateAt(1)}, {.metrics = {{"loss", 2.0}}});
  m.save(2, args::StandardSave{StateAt(2)}, {.metrics = {{"loss", 1.0}}});
  m.wait_until_finished();
  EXPECT_EQ(m.all_steps(), Steps{1});  // best (max) by the in-memory metrics
  EXPECT_FALSE(fs->Exists(kRoot / "1/metrics"));
  EXPECT_EQ(m.metrics(1), std::nullopt);
}

TEST(CheckpointManager, LightweightInitializeReadsNoStepMetadata) {
  auto fs = NewInMemoryFileSystem();
  CheckpointManagerOptions o;
  o.file_system = fs;
  {
    CheckpointManager m(kRoot, o);
    m.save(1, args::StandardSave{StateAt(1)}, {.metrics = {{"loss", 2.0}}});
  }
  fs->WriteFile(kRoot / "1/_CHECKPOINT_METADATA", "not json");
  o.lightweight_initialize = true;
  o.best_fn = Loss;
  CheckpointManager m(kRoot, o);
  EXPECT_EQ(m.all_steps(), Steps{1});
  EXPECT_EQ(m.best_step(), std::nullopt);  // its metrics were not read
}

TEST(CheckpointManager, PosixRootWithPermissions) {
  cairn::testing::TempDir dir;
  CheckpointManagerOptions o;
  o.file_options.path_permission_mode = 0750;
  CheckpointManager m(dir / "run", o);
  m.save(1, args::StandardSave{StateAt(1)});
  m.wait_until_finished();
  EXPECT_EQ(fs::status(dir / "run").permissions() & fs::perms::all,
            fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  EXPECT_EQ(m.restore(1), StateAt(1));
}

// Orbax wrote these: a manager over a root holding them lists them and restores them without being told the
// items' handlers.
TEST(CheckpointManager, OrbaxCompositeFixturesAreListedAndRestore) {
  cairn::testing::TempDir dir;
  const auto fixtures = cairn::testing::FixturesDir();
  fs::copy(fixtures / "v0_checkpoints/composite_checkpoint/checkpoint_metadata_present/pytree_checkpointable_has_metadata",
           dir / "3", fs::copy_options::recursive);
  fs::copy(fixtures / "v1_checkpoints/composite_checkpoint/checkpoint_metadata_present/pytree_checkpointable_has_metadata",
           dir / "4", fs::copy_options::recursive);
  fs::copy(fixtures / "v0_checkpoints/composite_checkpoint/checkpoint_metadata_missing/pytree_checkpointable_has_metadata",
           dir / "5", fs::copy_options::recursive);
  const Tree expected = Tree::Dict({{"a", Array::FromVector<int32_t>({8}, {0, 1, 2, 3, 4, 5, 6, 7})},
                                    {"b", Tree::Dict({{"c", Array::FromVector<int32_t>({3}, {1, 2, 3})}})}});
  CheckpointManagerOptions o;
  o.max_to_keep = 2;
  CheckpointManager m(dir.path(), o);
  EXPECT_EQ(m.all_steps(), (Steps{3, 4, 5}));
  EXPECT_EQ(m.latest_step(), 5);
  Tree v0 = m.restore(3);
  EXPECT_EQ(v0["state"], expected);
  EXPECT_EQ(v0["metadata"]["metadata"].string(), "json_data");
  EXPECT_EQ(m.restore(4)["state"], expected);
  EXPECT_EQ(m.restore(5, args::Composite({{"state", args::Item(args::StandardRestore{})}}))["state"], expected);
  EXPECT_EQ(m.metadata(3).custom_metadata["custom"], "meta");
  EXPECT_EQ(m.item_metadata(3)["state"], Tree::Dict({{"a", ArraySpec{DType::kInt32, {8}}},
                                                     {"b", Tree::Dict({{"c", ArraySpec{DType::kInt32, {3}}}})}}));
  // cairn's next step joins them, and retention treats them as any other step.
  args::Composite next;
  next.add("state", args::StandardSave{StateAt(6)});
  EXPECT_TRUE(m.save(6, next));
  m.wait_until_finished();
  EXPECT_EQ(m.all_steps(), (Steps{5, 6}));
  EXPECT_FALSE(fs::exists(dir / "3"));
  EXPECT_EQ(m.restore(6)["state"], StateAt(6));
}

}  // namespace
}  // namespace cairn
