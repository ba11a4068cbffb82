// CheckpointManager across processes: barriers, saves of several processes, active processes.
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
#include "processes.h"
#include "test_util.h"

namespace cairn {
namespace {

using namespace cairn::testing::manager_test;  // fs, sdp, pp, the fixture and the helpers
using cairn::testing::ExpectNoErrors;
using cairn::testing::RunProcesses;

TEST(CheckpointManager, BarriersAreNamedAfterOrbaxs) {
  auto fs = NewInMemoryFileSystem();
  std::mutex mu;
  std::vector<std::string> keys;
  CheckpointManagerOptions o;
  o.max_to_keep = 1;
  o.async_options.barrier_sync_fn = [&](const std::string& key, int64_t timeout_ms) {
    // The manager's barriers wait barrier_timeout_secs (Orbax's coordination timeout); the checkpointer's, the
    // save's timeout_secs.
    EXPECT_EQ(timeout_ms, key.find("CheckpointManager:") != std::string::npos ? 300'000 : 600'000) << key;
    std::lock_guard lock(mu);
    keys.push_back(key);
  };
  o.multiprocessing_options.barrier_sync_key_prefix = "run1/";
  o.file_system = fs;
  CheckpointManager m(kRoot, o, {}, nlohmann::json{{"a", 1}});
  m.save(1, args::StandardSave{StateAt(1)});
  m.save(2, args::StandardSave{StateAt(2)});
  m.delete_step(2);
  m.close();
  std::lock_guard lock(mu);
  for (const char* key : {"run1/CheckpointManager:create_directory", "run1/CheckpointManager:save_root_metadata",
                          "run1/CheckpointManager:save_start", "run1/CheckpointManager:old_steps_to_remove",
                          "run1/CheckpointManager:deleted_step", "run1/save_start", "run1/async_commit_complete"}) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << key;
  }
}

// Two processes (threads with a local process group): they meet at the manager's barriers in the same order, and
// only the primary host (here process 1) deletes and writes the root metadata.
TEST(CheckpointManager, ProcessesMeetAtTheManagersBarriers) {
  auto fs = NewInMemoryFileSystem();
  {
    CheckpointManagerOptions o;
    o.file_system = fs;
    CheckpointManager m(kRoot, o);
    m.save(1, args::StandardSave{StateAt(1)});
    m.save(2, args::StandardSave{StateAt(2)});
  }
  fs->CreateDirs(kRoot / "3.orbax-checkpoint-tmp");
  std::vector<std::vector<int64_t>> seen(2);
  ExpectNoErrors(RunProcesses(2, [&](int i, std::shared_ptr<ProcessGroup> group) {
    CheckpointManagerOptions o;
    o.cleanup_tmp_directories = true;
    o.multiprocessing_options.primary_host = 1;
    o.multiprocessing_options.process_group = group;
    o.multiprocessing_options.barrier_timeout_secs = 20;
    o.file_system = fs;
    CheckpointManager m(kRoot, o, {}, nlohmann::json{{"process", i}});
    m.delete_step(1);
    seen[static_cast<size_t>(i)] = m.all_steps();
    m.close();
  }));
  EXPECT_EQ(seen[0], Steps{2});
  EXPECT_EQ(seen[1], Steps{2});
  EXPECT_EQ(Entries(*fs, kRoot), (std::set<std::string>{"2", "metadata"}));
  CheckpointManagerOptions o;
  o.file_system = fs;
  EXPECT_EQ(CheckpointManager(kRoot, o).metadata().custom_metadata, (nlohmann::json{{"process", 1}}));
}

// Two processes save a run together: asynchronous saves, metrics, retention; each process holds the same steps
// and restores the same state. Their clocks disagree, yet they save the same steps: the primary decides.
TEST(CheckpointManager, TwoProcessesSaveARunTogether) {
  auto fs = NewInMemoryFileSystem();
  std::vector<std::vector<int64_t>> held(2), saved(2);
  ExpectNoErrors(RunProcesses(2, [&](int p, std::shared_ptr<ProcessGroup> group) {
    FakeClock clock(1000 + p * 100);  // the clocks disagree, and process 1's runs faster
    CheckpointManagerOptions o;
    o.save_decision_policy = std::make_shared<sdp::ContinuousCheckpointingPolicy>(/*minimum_interval_secs=*/10);
    o.preservation_policy = std::make_shared<pp::AnyPreservationPolicy>(
        pp::BestN(Loss, 1, /*reverse=*/true), pp::LatestN(2));
    o.cleanup_tmp_directories = true;
    o.multiprocessing_options.process_group = group;
    o.multiprocessing_options.barrier_timeout_secs = 30;
    o.file_system = fs;
    o.now_nsecs = clock.fn();
    CheckpointManager m(kRoot, o, {}, nlohmann::json{{"run", "two"}});
    for (int64_t step = 0; step < 12; ++step) {
      clock.Advance(p == 0 ? 4 : 7);
      m.wait_until_finished();  // so that "a save in progress" does not depend on timing here
      const double loss = step == 3 ? 0.01 : 1.0 / (step + 1);
      if (m.save(step, args::StandardSave{StateAt(step)}, {.metrics = {{"loss", loss}}})) {
        saved[static_cast<size_t>(p)].push_back(step);
      }
    }
    m.wait_until_finished();
    held[static_cast<size_t>(p)] = m.all_steps();
    for (int64_t step : m.all_steps()) EXPECT_EQ(m.restore(step), StateAt(step)) << "process " << p;
    m.close();
  }));
  // Process 0's clock (4 s a step): the first step, then every third (12 s). Process 1's alone would save every
  // second step.
  EXPECT_EQ(saved[0], (Steps{0, 3, 6, 9}));
  EXPECT_EQ(saved[1], saved[0]);
  EXPECT_EQ(held[0], (Steps{3, 6, 9}));
  EXPECT_EQ(held[1], held[0]);
  EXPECT_EQ(Entries(*fs, kRoot), (std::set<std::string>{"3", "6", "9", "metadata"}));
}

// save_deltas with two processes: each process shares its own boxes' unchanged chunks with the latest kept step.
TEST(CheckpointManager, TwoProcessesSaveDeltas) {
  cairn::testing::ScratchDir dir;
  const Array frozen = cairn::testing::Noise({128, 64});
  const NamedSharding rows{{2}, {"x"}, {{"x"}}};
  auto adapter = [](int64_t step) {
    Array a = cairn::testing::Noise({32, 64});
    for (auto& v : a.mutable_data<uint32_t>()) v += static_cast<uint32_t>(step);
    return a;
  };
  ExpectNoErrors(RunProcesses(2, [&](int p, std::shared_ptr<ProcessGroup> group) {
    CheckpointManagerOptions o;
    o.save_deltas = true;
    o.max_to_keep = 2;
    o.enable_async_checkpointing = false;
    o.multiprocessing_options.process_group = group;
    o.multiprocessing_options.barrier_timeout_secs = 30;
    CheckpointManager m(dir.path(), o);
    for (int64_t step = 0; step < 3; ++step) {
      m.save(step, args::StandardSave{Tree::Dict({{"frozen", ShardedArray::FromGlobal(frozen, rows, p)},
                                                   {"adapter", ShardedArray::FromGlobal(adapter(step), rows, p)}})});
    }
    m.close();
  }));
  for (const char* step : {"1", "2"}) {
    const auto delta = DescribeCheckpoint(dir / step / "default")["items"][0]["delta"];
    EXPECT_GE(delta["bytes_shared"].get<uint64_t>(), 128u * 64 * 4) << step << ": " << delta.dump();
  }
  CheckpointManagerOptions o;
  o.read_only = true;
  CheckpointManager reader(dir.path(), o);
  EXPECT_EQ(reader.all_steps(), (Steps{1, 2}));
  EXPECT_EQ(reader.restore(2), Tree::Dict({{"frozen", frozen}, {"adapter", adapter(2)}}));
}

// With active_processes, the active ones save; another process may read the run but not save.
TEST(CheckpointManager, ActiveProcessesSaveAndTheOthersOnlyRead) {
  auto fs = NewInMemoryFileSystem();
  std::atomic<int> done{0};
  ExpectNoErrors(RunProcesses(3, [&](int p, std::shared_ptr<ProcessGroup> group) {
    CheckpointManagerOptions o;
    o.max_to_keep = 2;
    o.multiprocessing_options.process_group = group;
    o.multiprocessing_options.active_processes = std::vector<int>{0, 2};
    o.multiprocessing_options.primary_host = 2;
    o.multiprocessing_options.barrier_timeout_secs = 30;
    o.file_system = fs;
    CheckpointManager m(kRoot, o);
    if (p == 1) {
      EXPECT_THROW(m.save(0, args::StandardSave{StateAt(0)}), InvalidArgumentError);
      return;
    }
    for (int64_t step = 0; step < 4; ++step) m.save(step, args::StandardSave{StateAt(step)});
    m.close();
    EXPECT_EQ(m.all_steps(), (Steps{2, 3}));
    ++done;
  }));
  EXPECT_EQ(done.load(), 2);
  CheckpointManagerOptions o;
  o.read_only = true;
  o.file_system = fs;
  CheckpointManager reader(kRoot, o);
  EXPECT_EQ(reader.all_steps(), (Steps{2, 3}));
  EXPECT_EQ(reader.restore(), StateAt(3));
}

}  // namespace
}  // namespace cairn
