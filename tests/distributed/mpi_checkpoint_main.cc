// Checkpoints across real processes under mpirun. Each mode prints "CAIRN-MPI-CKPT PASS <mode>" from process 0
// when every process saw what it should (CTest matches that line; mpirun's exit status says little after a
// process was killed on purpose).
//
//   save DIR      4 processes: a sharded save (sync into DIR/sync, async into DIR/async)
//   restore DIR   any number: each restores its own boxes of both, in another partitioning, and checks them
//   fail DIR      4 processes: process 2 fails mid-save; every process fails, nothing is committed
//   kill DIR      4 processes: process 3 is killed mid-save; the others time out, nothing is committed
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
    std::fprintf(stderr, "usage: %s save|restore|fail|kill DIR\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const fs::path dir = argv[2];
  auto group = MpiProcessGroup();
  std::string outcome;
  try {
    if (mode == "save") outcome = Save(*group, group, dir);
    else if (mode == "restore") outcome = Restore(*group, group, dir);
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
