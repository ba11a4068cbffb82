// Saves and restores across processes, with processes simulated by threads (LocalProcessGroups): sharded saves
// on 4, restores on 1, 2 and 3 with other partitionings, replicated arrays written once, sync and async,
// failures on one process failing all, and restores that read only what their boxes need.
#include <gtest/gtest.h>

#include <fstream>

#include <atomic>
#include <functional>
#include <thread>

#include "cairn/cairn.h"
#include "core/box_copy.h"
#include "kvstore/ocdbt/ocdbt.h"
#include "processes.h"
#include "test_util.h"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using cairn::testing::ExpectNoErrors;
using cairn::testing::RunProcesses;
using cairn::testing::Iota;
using cairn::testing::TempDir;

CheckpointerOptions OptionsFor(std::shared_ptr<ProcessGroup> group, int64_t barrier_timeout_secs = 30) {
  CheckpointerOptions options;
  options.multiprocessing_options.process_group = std::move(group);
  options.multiprocessing_options.barrier_timeout_secs = barrier_timeout_secs;
  return options;
}

const NamedSharding kRows{{4}, {"x"}, {{"x"}}};                          // 4 processes, dim 0 split
const NamedSharding kGrid{{2, 2}, {"x", "y"}, {{"x"}, {"y"}}};           // 2x2 mesh, both dims split
const NamedSharding kReplicated{{4}, {"x"}, {}};                         // every process holds it all

const Array kW = Iota({16, 12});
const Array kG = Iota({8, 8}, DType::kInt32);
const Array kR = Iota({5}, DType::kFloat64);

Tree StateFor(int process) {
  return Tree::Dict({{"w", ShardedArray::FromGlobal(kW, kRows, process)},
                     {"g", ShardedArray::FromGlobal(kG, kGrid, process)},
                     {"r", ShardedArray::FromGlobal(kR, kReplicated, process)},
                     {"step", Tree::Scalar(int64_t{3})},
                     {"bias", Iota({3})}});
}

const Tree kWhole = Tree::Dict({{"w", kW}, {"g", kG}, {"r", kR}, {"step", Tree::Scalar(int64_t{3})}, {"bias", Iota({3})}});

void SaveOnFour(const fs::path& dir, bool async, PyTreeCheckpointHandlerOptions layout = {}) {
  ExpectNoErrors(RunProcesses(4, [&](int p, std::shared_ptr<ProcessGroup> group) {
    auto handler = std::make_unique<PyTreeCheckpointHandler>(layout);
    if (async) {
      AsyncCheckpointer ckptr(std::move(handler), {}, OptionsFor(group));
      ckptr.save(dir, args::PyTreeSave{StateFor(p)});
      ckptr.wait_until_finished();
    } else {
      Checkpointer ckptr(std::move(handler), OptionsFor(group));
      ckptr.save(dir, args::PyTreeSave{StateFor(p)});
    }
  }));
}

Array Slice(const Array& global, const Box& box, DType dtype) {
  Array out = Array::Allocate(global.dtype(), box.shape);
  CopyBox(global.bytes().data(), global.shape(), box.origin, out.mutable_bytes().data(), box.shape,
          Shape(box.shape.size(), 0), box.shape, ItemSize(global.dtype()));
  return out.dtype() == dtype ? out : out.Cast(dtype);
}

// Restores on `n` processes: w split by columns over n, g by rows over 2 when n is even (else whole, as an
// ArraySpec), and checks every process got exactly its boxes.
void RestoreOn(int n, const fs::path& dir, PyTreeCheckpointHandlerOptions layout = {}) {
  const NamedSharding columns{{n}, {"c"}, {{}, {"c"}}};
  const NamedSharding rows{{n}, {"r"}, {{"r"}}};
  ExpectNoErrors(RunProcesses(n, [&](int p, std::shared_ptr<ProcessGroup> group) {
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(layout), OptionsFor(group));
    Tree g_target = n % 2 == 0 ? Tree(ShardedArraySpec::ForProcess(DType::kInt64, {8, 8}, rows, p))
                               : Tree(ArraySpec{DType::kInt32, {8, 8}});
    Tree target = Tree::Dict({{"w", ShardedArraySpec::ForProcess(DType::kFloat32, {16, 12}, columns, p)},
                              {"g", g_target},
                              {"r", ArraySpec{DType::kFloat64, {5}}},
                              {"step", Tree::Scalar(int64_t{0})},
                              {"bias", ArraySpec{DType::kFloat32, {3}}}});
    Tree restored = ckptr.restore(dir, args::PyTreeRestore{target});
    const auto& w = restored["w"].sharded_array();
    ASSERT_EQ(w.shards().size(), 1u);
    const Box w_box = columns.BoxFor({16, 12}, p);
    EXPECT_EQ(w.shards()[0].box, w_box);
    EXPECT_EQ(w.shards()[0].data, Slice(kW, w_box, DType::kFloat32)) << "process " << p;
    if (n % 2 == 0) {
      const Box g_box = rows.BoxFor({8, 8}, p);
      EXPECT_EQ(restored["g"].sharded_array().shards()[0].data, Slice(kG, g_box, DType::kInt64));
    } else {
      EXPECT_EQ(restored["g"].array(), kG);
    }
    EXPECT_EQ(restored["r"].array(), kR);
    EXPECT_EQ(restored["step"], Tree::Scalar(int64_t{3}));
  }));
}

TEST(MultiProcess, SaveShardedOnFourRestoreOnOneTwoThree) {
  for (bool async : {false, true}) {
    SCOPED_TRACE(async ? "async" : "sync");
    TempDir tmp;
    const fs::path dir = tmp / "ckpt";
    SaveOnFour(dir, async);
    // Each process wrote its own database; the primary merged them into the root that readers open.
    for (int p = 0; p < 4; ++p) {
      EXPECT_TRUE(fs::exists(dir / ("ocdbt.process_" + std::to_string(p)) / "manifest.ocdbt"));
      EXPECT_TRUE(fs::exists(dir / "array_metadatas" / ("process_" + std::to_string(p))));
    }
    EXPECT_TRUE(fs::exists(dir / "manifest.ocdbt"));
    EXPECT_TRUE(fs::exists(dir / "commit_success.txt"));
    // One process, no target: the whole arrays.
    Checkpointer single(std::make_unique<PyTreeCheckpointHandler>());
    EXPECT_EQ(single.restore(dir), kWhole);
    RestoreOn(2, dir);
    RestoreOn(3, dir);
  }
}

// Delta saves on 4 processes: each process's `ocdbt.process_<i>/` shares its boxes' unchanged chunks with the base's
// data files (by content, or whole boxes declared frozen), the merged step restores exactly on one process and
// verifies, and survives the deletion of its base.
TEST(MultiProcess, DeltaSavesShareEachProcesssUnchangedBoxes) {
  TempDir dir;
  const Array frozen = cairn::testing::Noise({256, 64});  // 64 KiB: 16 KiB boxes, stored out of line
  auto adapter = [](int step) {
    Array a = cairn::testing::Noise({64, 64});
    for (auto& v : a.mutable_data<uint32_t>()) v += static_cast<uint32_t>(step);
    return a;
  };
  auto whole = [&](int step) { return Tree::Dict({{"frozen", frozen}, {"adapter", adapter(step)}}); };
  auto save = [&](int step, const SaveOptions& options, SaveArgsMap save_args = {}) {
    ExpectNoErrors(RunProcesses(4, [&](int p, std::shared_ptr<ProcessGroup> group) {
      PyTreeCheckpointHandlerOptions layout;
      layout.use_compression = false;
      Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(layout), OptionsFor(group));
      Tree state = Tree::Dict({{"frozen", ShardedArray::FromGlobal(frozen, kRows, p)},
                               {"adapter", ShardedArray::FromGlobal(adapter(step), kRows, p)}});
      ckptr.save(dir / std::to_string(step), args::PyTreeSave{state, save_args}, options);
    }));
  };
  auto shared_and_written = [&](int step) {
    const auto delta = DescribeCheckpoint(dir / std::to_string(step))["items"][0]["delta"];
    return std::make_pair(delta["bytes_shared"].get<uint64_t>(), delta["bytes_written"].get<uint64_t>());
  };
  save(1, SaveOptions{.record_delta_hashes = true});
  save(2, SaveOptions{.delta_base = dir / "1"});
  save(3, SaveOptions{.delta_base = dir / "2"}, {{"frozen", SaveArgs{.frozen = true}}});
  for (int step : {2, 3}) {
    const auto [shared, written] = shared_and_written(step);
    EXPECT_EQ(shared, 256u * 64 * 4) << "step " << step;
    EXPECT_EQ(written, 64u * 64 * 4) << "step " << step;
    for (int p = 0; p < 4; ++p) {
      size_t linked = 0;
      const fs::path data = dir / std::to_string(step) / ("ocdbt.process_" + std::to_string(p)) / "d";
      for (const auto& entry : fs::directory_iterator(data)) linked += entry.hard_link_count() > 1;
      EXPECT_GT(linked, 0u) << "step " << step << ", process " << p;
    }
    EXPECT_TRUE(VerifyCheckpoint(dir / std::to_string(step)).problems.empty()) << "step " << step;
  }
  fs::remove_all(dir / "1");
  fs::remove_all(dir / "2");
  Checkpointer reader(std::make_unique<PyTreeCheckpointHandler>());
  EXPECT_EQ(reader.restore(dir / "3"), whole(3));
  EXPECT_TRUE(VerifyCheckpoint(dir / "3").problems.empty());
}

TEST(MultiProcess, PerParameterDirectoriesToo) {
  TempDir tmp;
  PyTreeCheckpointHandlerOptions layout;
  layout.use_ocdbt = false;
  SaveOnFour(tmp / "ckpt", /*async=*/false, layout);
  Checkpointer single(std::make_unique<PyTreeCheckpointHandler>(layout));
  EXPECT_EQ(single.restore(tmp / "ckpt"), kWhole);
  RestoreOn(2, tmp / "ckpt", layout);
}

TEST(MultiProcess, ReplicatedArraysAreWrittenOnceAndShardingIsOrbaxs) {
  TempDir tmp;
  SaveOnFour(tmp / "ckpt", false);
  auto fs = FileSystem::Default();
  for (int p = 0; p < 4; ++p) {
    auto db = kvstore::OpenOcdbtForRead(fs, tmp / "ckpt" / ("ocdbt.process_" + std::to_string(p)));
    const auto r_keys = db->ListKeys("r/");
    const auto bias_keys = db->ListKeys("bias/");
    // The replicated array and the whole one: only process 0 (replica 0, the primary) holds them.
    EXPECT_EQ(r_keys.empty(), p != 0) << p;
    EXPECT_EQ(bias_keys.empty(), p != 0) << p;
    // Every process wrote exactly its rows of w.
    EXPECT_EQ(db->ListKeys("w/").size(), p == 0 ? 2u : 1u) << p;  // process 0 also holds w/.zarray
  }
  auto sharding = nlohmann::json::parse(fs->ReadFile(tmp / "ckpt/_sharding"));
  auto w = nlohmann::json::parse(sharding["dw=="].get<std::string>());
  EXPECT_EQ(w["sharding_type"], "NamedSharding");
  EXPECT_EQ(w["partition_spec"], nlohmann::json::array({"x"}));
  EXPECT_EQ(w["device_mesh"]["mesh"], nlohmann::json::parse(R"([{"id": 0}, {"id": 1}, {"id": 2}, {"id": 3}])"));
  EXPECT_EQ(NamedSharding::FromOrbaxJson(w), kRows);
  auto metadata = nlohmann::json::parse(fs->ReadFile(tmp / "ckpt/_METADATA"));
  EXPECT_EQ(metadata["tree_metadata"]["('w',)"]["value_metadata"]["write_shape"], nlohmann::json::array({4, 12}));
}

// A handler that fails on one process.
class FailOn : public PyTreeCheckpointHandler {
 public:
  explicit FailOn(bool fail) : fail_(fail) {}
  void save(const HandlerDirectory& directory, const CheckpointArgs& args) override {
    if (fail_) throw IoError("simulated disk failure on this process", EIO);
    PyTreeCheckpointHandler::save(directory, args);
  }

 private:
  bool fail_;
};

TEST(MultiProcess, OneProcessFailingFailsAllAndCommitsNothing) {
  for (bool async : {false, true}) {
    SCOPED_TRACE(async ? "async" : "sync");
    TempDir tmp;
    SaveOnFour(tmp / "1", false);
    auto errors = RunProcesses(4, [&](int p, std::shared_ptr<ProcessGroup> group) {
      auto handler = std::make_unique<FailOn>(p == 2);
      if (async) {
        AsyncCheckpointer ckptr(std::move(handler), {}, OptionsFor(group));
        ckptr.save(tmp / "2", args::PyTreeSave{StateFor(p)});
        ckptr.wait_until_finished();
      } else {
        Checkpointer ckptr(std::move(handler), OptionsFor(group));
        ckptr.save(tmp / "2", args::PyTreeSave{StateFor(p)});
      }
    });
    for (int p = 0; p < 4; ++p) {
      ASSERT_TRUE(errors[p]) << "process " << p << " did not fail";
      try {
        std::rethrow_exception(errors[p]);
      } catch (const IoError& e) {
        EXPECT_EQ(p, 2);
      } catch (const AbortedError& e) {
        EXPECT_NE(p, 2);
        EXPECT_NE(std::string(e.what()).find("process 2 failed"), std::string::npos) << e.what();
      }
    }
    EXPECT_FALSE(fs::exists(tmp / "2"));
    EXPECT_FALSE(fs::exists(tmp / "2.orbax-checkpoint-tmp"));
    Checkpointer single(std::make_unique<PyTreeCheckpointHandler>());
    EXPECT_EQ(single.restore(tmp / "1"), kWhole);
  }
}

TEST(MultiProcess, AProcessThatDiesMakesTheOthersTimeOut) {
  TempDir tmp;
  SaveOnFour(tmp / "1", false);
  const auto start = std::chrono::steady_clock::now();
  auto errors = RunProcesses(4, [&](int p, std::shared_ptr<ProcessGroup> group) {
    if (p == 3) return;  // "killed" before it reached the save
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(), OptionsFor(group, /*barrier_timeout_secs=*/1));
    ckptr.save(tmp / "2", args::PyTreeSave{StateFor(p)});
  });
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  for (int p = 0; p < 3; ++p) {
    ASSERT_TRUE(errors[p]);
    try {
      std::rethrow_exception(errors[p]);
    } catch (const TimeoutError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "process " << p << ": " << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(tmp / "2"));
  Checkpointer single(std::make_unique<PyTreeCheckpointHandler>());
  EXPECT_EQ(single.restore(tmp / "1"), kWhole);
}

// Counts the bytes read through it.
class CountingFileSystem final : public FileSystem {
 public:
  explicit CountingFileSystem(std::shared_ptr<FileSystem> base) : base_(std::move(base)) {}
  std::atomic<uint64_t> bytes_read{0};
  std::optional<FileInfo> Stat(const fs::path& p) override { return base_->Stat(p); }
  void CreateDir(const fs::path& p, std::optional<uint32_t> m) override { base_->CreateDir(p, m); }
  std::unique_ptr<WritableFile> NewWritableFile(const fs::path& p) override { return base_->NewWritableFile(p); }
  std::vector<std::string> ListDir(const fs::path& p) override { return base_->ListDir(p); }
  void Rename(const fs::path& a, const fs::path& b) override { base_->Rename(a, b); }
  void RemoveFile(const fs::path& p) override { base_->RemoveFile(p); }
  void RemoveEmptyDir(const fs::path& p) override { base_->RemoveEmptyDir(p); }
  void SyncDir(const fs::path& p) override { base_->SyncDir(p); }
  std::unique_ptr<ReadableFile> OpenForRead(const fs::path& p) override {
    struct Counted final : ReadableFile {
      std::unique_ptr<ReadableFile> file;
      std::atomic<uint64_t>* counter;
      uint64_t Size() const override { return file->Size(); }
      void ReadAt(uint64_t offset, size_t length, char* out) const override {
        *counter += length;
        file->ReadAt(offset, length, out);
      }
    };
    auto counted = std::make_unique<Counted>();
    counted->file = base_->OpenForRead(p);
    counted->counter = &bytes_read;
    return counted;
  }

 private:
  std::shared_ptr<FileSystem> base_;
};

TEST(MultiProcess, RestoresReadNoMoreThanTheirBoxesNeed) {
  // Large enough that metadata is noise; uncompressed, saved in 4 row blocks, restored in 3 and 6 row blocks
  // that cut the saved chunks.
  TempDir tmp;
  const Array big = Iota({960, 256});
  const NamedSharding save_rows{{4}, {"x"}, {{"x"}}};
  PyTreeCheckpointHandlerOptions layout;
  layout.use_compression = false;
  ExpectNoErrors(RunProcesses(4, [&](int p, std::shared_ptr<ProcessGroup> group) {
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(layout), OptionsFor(group));
    ckptr.save(tmp / "ckpt", args::PyTreeSave{Tree::Dict({{"big", ShardedArray::FromGlobal(big, save_rows, p)}})});
  }));
  // Unverified, a box reads exactly its rows' bytes. Verified (the default), each range is widened to whole
  // 64 KiB checksum blocks so that every byte read is checked: at most two blocks more per chunk it cuts.
  for (const bool verified : {false, true}) {
  for (int n : {3, 6}) {
    SCOPED_TRACE(verified ? "checksums verified" : "checksums not verified");
    const NamedSharding rows{{n}, {"r"}, {{"r"}}};
    ExpectNoErrors(RunProcesses(n, [&](int p, std::shared_ptr<ProcessGroup> group) {
      auto counting = std::make_shared<CountingFileSystem>(FileSystem::Default());
      CheckpointerOptions options = OptionsFor(group);
      options.file_system = counting;
      PyTreeCheckpointHandlerOptions read_layout = layout;
      read_layout.verify_checksums = verified;
      Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(read_layout), options);
      Tree target = Tree::Dict({{"big", ShardedArraySpec::ForProcess(DType::kFloat32, {960, 256}, rows, p)}});
      Tree restored = ckptr.restore(tmp / "ckpt", args::PyTreeRestore{target});
      const Box box = rows.BoxFor({960, 256}, p);
      EXPECT_EQ(restored["big"].sharded_array().shards()[0].data, Slice(big, box, DType::kFloat32));
      const double box_bytes = static_cast<double>(NumBytes(DType::kFloat32, box.shape));
      // Saved chunks are 240 rows: a box cuts at most two of them.
      const double needed = verified ? box_bytes + 2 * 2 * 65536.0 : box_bytes;
      if (std::getenv("CAIRN_TEST_VERBOSE")) std::printf("%d processes, process %d: read %.3f x its box\n", n, p, counting->bytes_read.load() / box_bytes);
      EXPECT_LE(static_cast<double>(counting->bytes_read.load()), 1.1 * needed)
          << n << " processes, process " << p << " read " << counting->bytes_read << " bytes for " << box_bytes;
    }));
  }
  }
}

// A box that cuts an uncompressed chunk reads only part of it; with checksums, every block it reads is checked:
// a flipped byte inside the box's blocks is a CorruptionError, one outside them is never read.
TEST(MultiProcess, RangeReadsOfAChunkAreChecksummed) {
  TempDir tmp;
  const Array big = Iota({1024, 256});  // one 1 MiB chunk: 16 blocks of 64 KiB (64 rows each)
  PyTreeCheckpointHandlerOptions layout;
  layout.use_compression = false;
  layout.use_ocdbt = false;  // the chunk is a file of its own, easy to damage
  Checkpointer(std::make_unique<PyTreeCheckpointHandler>(layout)).save(tmp / "ckpt", args::PyTreeSave{Tree::Dict({{"big", big}})});
  const fs::path chunk = tmp / "ckpt" / "big" / "0.0";
  ASSERT_TRUE(fs::exists(chunk));
  auto flip = [&](uint64_t offset) {
    std::fstream f(chunk, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x20);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(&c, 1);
  };
  const NamedSharding rows{{4}, {"r"}, {{"r"}}};  // process 1 reads rows 256..511: bytes [256 KiB, 512 KiB)
  auto restore_box = [&](bool verify) {
    PyTreeCheckpointHandlerOptions read_layout = layout;
    read_layout.verify_checksums = verify;
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(read_layout));
    Tree target = Tree::Dict({{"big", ShardedArraySpec::ForProcess(DType::kFloat32, {1024, 256}, rows, 1)}});
    return ckptr.restore(tmp / "ckpt", args::PyTreeRestore{target})["big"].sharded_array().shards()[0].data;
  };
  const Array expected = Slice(big, rows.BoxFor({1024, 256}, 1), DType::kFloat32);
  flip(900 * 1024);  // outside the box's blocks: never read
  EXPECT_EQ(restore_box(true), expected);
  flip(300 * 1024);  // inside
  try {
    restore_box(true);
    ADD_FAILURE() << "a damaged byte inside the box restored silently";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("CRC-32C"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("big/0.0"), std::string::npos) << e.what();
  }
  EXPECT_NE(restore_box(false), expected);  // unchecked, the damage comes through: what verification is for
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

TEST(MultiProcess, CompositeItemsAndAnotherPrimary) {
  TempDir tmp;
  ExpectNoErrors(RunProcesses(2, [&](int p, std::shared_ptr<ProcessGroup> group) {
    CheckpointerOptions options = OptionsFor(group);
    options.multiprocessing_options.primary_host = 1;
    options.multiprocessing_options.barrier_sync_key_prefix = "composite/";
    Checkpointer ckptr(std::make_unique<CompositeCheckpointHandler>(), options);
    const NamedSharding halves{{2}, {"x"}, {{"x"}}};
    args::Composite save;
    save.add("state", args::PyTreeSave{Tree::Dict({{"w", ShardedArray::FromGlobal(kW, halves, p)}})})
        .add("meta", args::JsonSave{{{"written_by", p}}});
    ckptr.save(tmp / "1", save);
  }));
  Checkpointer single(std::make_unique<CompositeCheckpointHandler>());
  Tree restored = single.restore(tmp / "1", args::Composite({{"state", args::Item(args::PyTreeRestore{})},
                                                            {"meta", args::Item(args::JsonRestore{})}}));
  EXPECT_EQ(restored["state"]["w"].array(), kW);
  EXPECT_EQ(restored["meta"]["written_by"].scalar<int64_t>(), 1);  // the JSON item is the primary's
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

TEST(MultiProcess, ActiveProcessesSaveWhileOthersDoNot) {
  TempDir tmp;
  // Processes 1 and 3 of 4 save (3 is the primary); 0 and 2 do other work meanwhile, and their checkpointers
  // refuse to save.
  auto errors = RunProcesses(4, [&](int p, std::shared_ptr<ProcessGroup> group) {
    CheckpointerOptions options = OptionsFor(group);
    options.multiprocessing_options.active_processes = std::vector<int>{3, 1};
    options.multiprocessing_options.primary_host = 3;
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(), options);
    const NamedSharding halves{{2}, {"x"}, {{"x"}}};
    const int sub = p == 1 ? 0 : 1;
    if (p == 1 || p == 3) {
      ckptr.save(tmp / "1", args::PyTreeSave{Tree::Dict({{"w", ShardedArray::FromGlobal(kW, halves, sub)}})});
    } else {
      EXPECT_THROW(ckptr.save(tmp / "x", args::PyTreeSave{Tree::Dict({})}), InvalidArgumentError);
    }
  });
  ExpectNoErrors(errors);
  Checkpointer single(std::make_unique<PyTreeCheckpointHandler>());
  EXPECT_EQ(single.restore(tmp / "1")["w"].array(), kW);
  EXPECT_TRUE(fs::exists(tmp / "1/ocdbt.process_0"));
  EXPECT_TRUE(fs::exists(tmp / "1/ocdbt.process_1"));
  EXPECT_FALSE(fs::exists(tmp / "1/ocdbt.process_2"));
  EXPECT_FALSE(fs::exists(tmp / "x"));
  // A primary that is not active is a mistake.
  auto group = LocalProcessGroups::Create(1)[0];
  CheckpointerOptions options = OptionsFor(group);
  options.multiprocessing_options.active_processes = std::vector<int>{0};
  options.multiprocessing_options.primary_host = 1;
  EXPECT_THROW(Checkpointer(std::make_unique<PyTreeCheckpointHandler>(), options), InvalidArgumentError);
}

TEST(ProcessGroupSubgroup, MembersOnly) {
  auto errors = RunProcesses(4, [&](int p, std::shared_ptr<ProcessGroup> group) {
    if (p % 2 == 1) return;  // odd processes never call
    auto sub = group->Subgroup({0, 2});
    EXPECT_EQ(sub->count(), 2);
    EXPECT_EQ(sub->index(), p / 2);
    auto all = sub->AllGather(std::to_string(p), "k", std::chrono::seconds(10));
    EXPECT_EQ(all, (std::vector<std::string>{"0", "2"}));
    EXPECT_THROW(group->Subgroup({1, 3}), InvalidArgumentError);  // not a member
  });
  ExpectNoErrors(errors);
}

}  // namespace
}  // namespace cairn
