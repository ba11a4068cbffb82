// Checkpoints across real processes under mpirun. Each mode prints "CAIRN-MPI-CKPT PASS <mode>" from process 0
// when every process saw what it should (CTest matches that line; mpirun's exit status says little after a
// process was killed on purpose).
//
//   save DIR      4 processes: a sharded save (sync into DIR/sync, async into DIR/async)
//   restore DIR   any number: each restores its own boxes of both, in another partitioning, and checks them
//   fail DIR      4 processes: process 2 fails mid-save; every process fails, nothing is committed
//   kill DIR      4 processes: process 3 is killed mid-save; the others time out, nothing is committed
//   delta DIR     2 processes: step 2 a delta save against step 1 (DIR/delta), each process its own boxes; both
//                 restore exactly, step 2 shares the frozen bytes through hard links, and stays whole without step 1
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>

#include "cairn/cairn.h"
#include "core/box_copy.h"

namespace fs = std::filesystem;
using namespace cairn;

namespace {

Array Iota(Shape shape, DType dtype) {
  Array f = Array::Allocate(DType::kFloat64, shape);
  auto values = f.mutable_data<double>();
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(i);
  return f.Cast(dtype);
}

const Array kW = Iota({64, 24}, DType::kFloat32);
const Array kG = Iota({8, 8}, DType::kInt32);
const Array kR = Iota({5}, DType::kFloat64);
const NamedSharding kRows{{4}, {"x"}, {{"x"}}};
const NamedSharding kGrid{{2, 2}, {"x", "y"}, {{"x"}, {"y"}}};
const NamedSharding kReplicated{{4}, {"x"}, {}};

Tree StateFor(int process) {
  return Tree::Dict({{"w", ShardedArray::FromGlobal(kW, kRows, process)},
                     {"g", ShardedArray::FromGlobal(kG, kGrid, process)},
                     {"r", ShardedArray::FromGlobal(kR, kReplicated, process)},
                     {"step", Tree::Scalar(int64_t{3})}});
}

Array Slice(const Array& global, const Box& box) {
  Array out = Array::Allocate(global.dtype(), box.shape);
  CopyBox(global.bytes().data(), global.shape(), box.origin, out.mutable_bytes().data(), box.shape,
          Shape(box.shape.size(), 0), box.shape, ItemSize(global.dtype()));
  return out;
}

CheckpointerOptions Options(const std::shared_ptr<ProcessGroup>& group, int64_t barrier_timeout_secs = 60) {
  CheckpointerOptions options;
  options.multiprocessing_options.process_group = group;
  options.multiprocessing_options.barrier_timeout_secs = barrier_timeout_secs;
  return options;
}

// Every process reports; process 0 prints the verdict.
void Report(ProcessGroup& group, const std::string& mode, const std::string& outcome) {
  auto outcomes = group.AllGather(outcome, "report", std::chrono::seconds(60));
  if (group.index() != 0) return;
  for (size_t p = 0; p < outcomes.size(); ++p) {
    if (outcomes[p] != "ok") {
      std::printf("CAIRN-MPI-CKPT FAIL %s: process %zu: %s\n", mode.c_str(), p, outcomes[p].c_str());
      return;
    }
  }
  std::printf("CAIRN-MPI-CKPT PASS %s on %zu processes\n", mode.c_str(), outcomes.size());
}

std::string Save(ProcessGroup& group, const std::shared_ptr<ProcessGroup>& shared, const fs::path& dir) {
  if (group.count() != 4) return "save needs 4 processes";
  if (group.index() == 0) {
    fs::remove_all(dir / "sync");
    fs::remove_all(dir / "async");
    fs::create_directories(dir);
  }
  group.Barrier("cleaned", std::chrono::seconds(60));
  {
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(), Options(shared));
    ckptr.save(dir / "sync", args::PyTreeSave{StateFor(group.index())});
  }
  {
    AsyncCheckpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(), {}, Options(shared));
    ckptr.save(dir / "async", args::PyTreeSave{StateFor(group.index())});
    ckptr.wait_until_finished();
  }
  return "ok";
}

std::string Restore(ProcessGroup& group, const std::shared_ptr<ProcessGroup>& shared, const fs::path& dir) {
  const int n = group.count(), p = group.index();
  // Another partitioning than the save's: columns of w over n processes (24 divides by 1, 2, 3, 4), g whole.
  const NamedSharding columns{{n}, {"c"}, {{}, {"c"}}};
  for (const char* kind : {"sync", "async"}) {
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(), Options(shared));
    Tree target = Tree::Dict({{"w", ShardedArraySpec::ForProcess(DType::kFloat32, {64, 24}, columns, p)},
                              {"g", ArraySpec{DType::kInt32, {8, 8}}},
                              {"r", ArraySpec{DType::kFloat64, {5}}},
                              {"step", Tree::Scalar(int64_t{0})}});
    Tree restored = ckptr.restore(dir / kind, args::PyTreeRestore{target});
    const Box box = columns.BoxFor({64, 24}, p);
    if (restored["w"].sharded_array().shards().at(0).data != Slice(kW, box)) return std::string(kind) + ": w differs";
    if (restored["g"].array() != kG || restored["r"].array() != kR) return std::string(kind) + ": g or r differs";
    if (restored["step"] != Tree::Scalar(int64_t{3})) return std::string(kind) + ": step differs";
  }
  return "ok";
}

// A frozen array (64 KiB, stored out of line) and an adapter that changes with the step, both in rows over the two
// processes: what a fine-tuning job saves every step.
const Array kFrozen = Iota({256, 64}, DType::kFloat32);
const NamedSharding kTwoRows{{2}, {"x"}, {{"x"}}};

Array Adapter(int step) {
  Array a = Iota({64, 64}, DType::kFloat32);
  for (auto& v : a.mutable_data<float>()) v += static_cast<float>(step);
  return a;
}

Tree DeltaStateFor(int step, int process) {
  return Tree::Dict({{"frozen", ShardedArray::FromGlobal(kFrozen, kTwoRows, process)},
                     {"adapter", ShardedArray::FromGlobal(Adapter(step), kTwoRows, process)}});
}

// Each process reads back its own boxes of `step` and compares them with what it saved.
std::string CheckDeltaStep(const std::shared_ptr<ProcessGroup>& shared, const fs::path& step_dir, int step,
                           int process) {
  Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(), Options(shared));
  Tree target = Tree::Dict({{"frozen", ShardedArraySpec::ForProcess(DType::kFloat32, {256, 64}, kTwoRows, process)},
                            {"adapter", ShardedArraySpec::ForProcess(DType::kFloat32, {64, 64}, kTwoRows, process)}});
  Tree restored = ckptr.restore(step_dir, args::PyTreeRestore{target});
  const std::string where = step_dir.string() + ": ";
  if (restored["frozen"].sharded_array().shards().at(0).data != Slice(kFrozen, kTwoRows.BoxFor({256, 64}, process))) {
    return where + "frozen differs";
  }
  if (restored["adapter"].sharded_array().shards().at(0).data !=
      Slice(Adapter(step), kTwoRows.BoxFor({64, 64}, process))) {
    return where + "adapter differs";
  }
  return "ok";
}

std::string Delta(ProcessGroup& group, const std::shared_ptr<ProcessGroup>& shared, const fs::path& dir) {
  if (group.count() != 2) return "delta needs 2 processes";
  const int p = group.index();
  const fs::path root = dir / "delta";
  if (p == 0) {
    fs::remove_all(root);
    fs::create_directories(root);
  }
  group.Barrier("delta cleaned", std::chrono::seconds(60));
  PyTreeCheckpointHandlerOptions layout;
  layout.use_compression = false;
  {
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(layout), Options(shared));
    ckptr.save(root / "1", args::PyTreeSave{DeltaStateFor(1, p)}, SaveOptions{.record_delta_hashes = true});
    ckptr.save(root / "2", args::PyTreeSave{DeltaStateFor(2, p)}, SaveOptions{.delta_base = root / "1"});
  }
  for (int step : {1, 2}) {
    std::string outcome = CheckDeltaStep(shared, root / std::to_string(step), step, p);
    if (outcome != "ok") return outcome;
  }
  // This process's database of step 2 holds the base's data file as a second name (a hard link).
  size_t linked = 0;
  for (const auto& entry : fs::directory_iterator(root / "2" / ("ocdbt.process_" + std::to_string(p)) / "d")) {
    linked += entry.hard_link_count() > 1;
  }
  if (linked == 0) return "step 2 shares no data file with step 1";
  if (p == 0) {
    const auto delta = DescribeCheckpoint(root / "2")["items"][0]["delta"];
    if (delta["bytes_shared"].get<uint64_t>() != kFrozen.bytes().size() ||
        delta["bytes_written"].get<uint64_t>() != Adapter(2).bytes().size()) {
      return "step 2's accounting is off: " + delta.dump();
    }
  }
  // Every step is complete on its own: step 1 goes, step 2 still restores on both processes and verifies.
  group.Barrier("delta saved", std::chrono::seconds(60));
  if (p == 0) fs::remove_all(root / "1");
  group.Barrier("delta base removed", std::chrono::seconds(60));
  std::string outcome = CheckDeltaStep(shared, root / "2", 2, p);
  if (outcome != "ok") return "without step 1: " + outcome;
  if (p == 0 && !VerifyCheckpoint(root / "2").problems.empty()) return "step 2 does not verify without step 1";
  return "ok";
}

class FailingHandler : public PyTreeCheckpointHandler {
 public:
  explicit FailingHandler(int process, const std::string& how) : process_(process), how_(how) {}
  void save(const HandlerDirectory& directory, const CheckpointArgs& args) override {
    PyTreeCheckpointHandler::save(directory, args);  // write, then fail before the commit
    if (how_ == "fail" && process_ == 2) throw IoError("simulated disk failure on process 2", EIO);
    if (how_ == "kill" && process_ == 3) std::raise(SIGKILL);
  }

 private:
  int process_;
  std::string how_;
};

std::string FailOrKill(ProcessGroup& group, const std::shared_ptr<ProcessGroup>& shared, const fs::path& dir,
                       const std::string& how) {
  const int p = group.index();
  const fs::path target = dir / (how + "_attempt");
  Checkpointer ckptr(std::make_unique<FailingHandler>(p, how), Options(shared, how == "kill" ? 3 : 60));
  std::string seen = "no error";
  try {
    ckptr.save(target, args::PyTreeSave{StateFor(p)});
  } catch (const IoError&) {
    seen = "IoError";
  } catch (const AbortedError&) {
    seen = "AbortedError";
  } catch (const TimeoutError&) {
    seen = "TimeoutError";
  } catch (const std::exception& e) {
    seen = e.what();
  }
  const std::string expected = how == "kill" ? "TimeoutError" : (p == 2 ? "IoError" : "AbortedError");
  if (seen != expected) return "saw " + seen + ", expected " + expected;
  if (p == 0) {
    // Nothing committed, nothing left behind by the primary, and the earlier checkpoint intact.
    if (fs::exists(target)) return "a checkpoint was committed";
    if (fs::exists(target.string() + ".orbax-checkpoint-tmp")) return "the unfinished directory was left behind";
    Checkpointer single(std::make_unique<PyTreeCheckpointHandler>());
    Tree earlier = single.restore(dir / "sync");
    if (earlier["w"].array() != kW) return "the earlier checkpoint changed";
  }
  return "ok";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s save|restore|fail|kill|delta DIR\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const fs::path dir = argv[2];
  auto group = MpiProcessGroup();
  std::string outcome;
  try {
    if (mode == "save") outcome = Save(*group, group, dir);
    else if (mode == "restore") outcome = Restore(*group, group, dir);
    else if (mode == "delta") outcome = Delta(*group, group, dir);
    else outcome = FailOrKill(*group, group, dir, mode);
  } catch (const std::exception& e) {
    outcome = e.what();
  }
  if (mode == "kill") {
    // The group is broken after the timeout: each survivor reports for itself.
    if (group->index() == 0) {
      std::printf("CAIRN-MPI-CKPT %s kill: process 0 %s\n", outcome == "ok" ? "PASS" : "FAIL", outcome.c_str());
    }
    std::fflush(stdout);
    std::_Exit(0);
  }
  Report(*group, mode, outcome);
  return 0;
}
