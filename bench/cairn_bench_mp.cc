// cairn_bench_mp: the multi-process half of `make bench` (bench/run.py runs it under mpirun with 1, 2 and 4
// processes). Built only when cairn is built with MPI.
//
// Every process derives the same global state from the same rules: a transformer's float32 parameters (embedding,
// attention and MLP weights, layer-norm scales: a few dozen arrays, sized to --size-mib), each element a function
// of its array's name and its position only, so the state is the same whatever the process count. Each process
// holds its row shard of every array under NamedSharding{{n}, {"x"}, {{"x"}}} (every first dimension is a
// multiple of 4) and generates just those rows: the state is never materialised whole on one process, which on a
// small machine would cost n times the memory and the generation time and change nothing that is measured.
//
// Measured, with a barrier (the ProcessGroup's) before and after each timed region, so that a region's wall time
// is the same on every process and covers the slowest one:
//   save_raw           durable synchronous save (Checkpointer + PyTreeCheckpointHandler, uncompressed)
//   save_zstd          the same with zstd (--zstd)
//   restore_warm       each process restores its own boxes (ShardedArraySpec::ForProcess), page cache warm
//   restore_cold       the same once after process 0 dropped the page cache (sync; echo 3 > drop_caches)
//   restore_zstd_warm  the zstd checkpoint, warm (--zstd)
// Every restore's bytes are compared with the process's generated shard (the first repetition of each); a
// checksum of the whole state (a sum of per-row hashes, independent of the process count) lets the caller check
// that every run saved the same state. Process 0 writes the JSON (--json, else stdout).

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/cairn.h"
#include "bench_common.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using bench::Clock;
using bench::DiskUsage;
using bench::DropCaches;
using bench::Fmt;
using bench::Fnv1a;
using bench::NormalIsh;
using bench::RemoveTree;
using bench::Seconds;
using bench::SplitMix;

namespace {

struct Options {
  double size_mib = 256;
  fs::path dir;
  fs::path json_path;
  int reps = 3;
  int layers = 4;
  int64_t vocab = 32000;
  int mlp_ratio = 4;
  bool zstd = false;
  bool cold = true;
  bool keep = false;
};

int g_rank = 0;

Options ParseOptions(int argc, char** argv) {
  Options o;
  const bench::CommandLine cl =
      bench::CommandLine("cairn_bench_mp",
                         "mpirun -n N cairn_bench_mp --dir DIR [--json FILE] [--size-mib 256] [--reps 3] [--layers 4]\n"
                         "                  [--vocab 32000] [--mlp-ratio 4] [--zstd] [--no-cold] [--keep]",
                         /*quiet=*/g_rank != 0)
          .Value("--size-mib", &o.size_mib)
          .Value("--dir", &o.dir)
          .Value("--json", &o.json_path)
          .Value("--reps", &o.reps)
          .Value("--layers", &o.layers)
          .Value("--vocab", &o.vocab)
          .Value("--mlp-ratio", &o.mlp_ratio)
          .Switch("--zstd", &o.zstd, true)
          .Switch("--no-cold", &o.cold, false)
          .Switch("--keep", &o.keep, true);
  cl.Parse(argc, argv);
  if (o.dir.empty()) cl.Usage("--dir is required");
  if (o.size_mib <= 0 || o.reps < 1 || o.layers < 1 || o.vocab < 1 || o.mlp_ratio < 1) cl.Usage("bad sizes");
  return o;
}

void Log(const std::string& line) {
  if (g_rank == 0) std::cerr << "[cairn_bench_mp] " << line << std::endl;
}


// ---------------------------------------------------------------------------------------------------------------
// The state

inline uint64_t Mix(uint64_t z) { return SplitMix(z); }

struct Param {
  std::string name;  // "params.layers_01.mlp.wi"
  cairn::KeyPath path;
  cairn::Shape shape;  // global
  bool scale = false;
  uint64_t seed = 0;
  size_t bytes = 0;  // global
  // This process's rows.
  cairn::Box box;
  int replica_id = 0;
  cairn::Array shard;
};

struct State {
  int64_t d_model = 0;
  int64_t vocab = 0;
  std::vector<Param> params;
  size_t total_bytes = 0;
  size_t shard_bytes = 0;  // this process
};

// The transformer's parameters, all under "params", float32.
size_t StateBytes(const Options& o, int64_t vocab, int64_t d) {
  size_t total = 0;
  for (const auto& p : bench::ParamShapes({o.layers, vocab, o.mlp_ratio}, d))
    total += cairn::NumBytes(cairn::DType::kFloat32, p.shape);
  return total;
}

// Every first dimension a multiple of 4 (d_model a multiple of 16, the vocabulary rounded up to a multiple of 4),
// so that 1, 2 and 4 processes split every array by rows.
State MakeState(const Options& o, const cairn::NamedSharding& rows, int process) {
  State s;
  s.vocab = (o.vocab + 3) / 4 * 4;
  const size_t target = static_cast<size_t>(o.size_mib * 1024.0 * 1024.0);
  s.d_model = bench::ClosestDModel(target, [&](int64_t d) { return StateBytes(o, s.vocab, d); });
  for (const auto& shape : bench::ParamShapes({o.layers, s.vocab, o.mlp_ratio}, s.d_model)) {
    Param p;
    std::vector<std::string> keys{"params"};
    keys.insert(keys.end(), shape.keys.begin(), shape.keys.end());
    for (const auto& k : keys) {
      p.path.push_back(cairn::KeyEntry{k, cairn::KeyType::kDict});
      p.name += (p.name.empty() ? "" : ".") + k;
    }
    p.shape = shape.shape;
    p.scale = shape.scale;
    p.seed = Fnv1a(p.name);
    p.bytes = cairn::NumBytes(cairn::DType::kFloat32, p.shape);
    p.box = rows.BoxFor(p.shape, process);
    p.replica_id = rows.ReplicaIdFor(process);
    s.total_bytes += p.bytes;
    s.params.push_back(std::move(p));
  }
  return s;
}

size_t RowElements(const cairn::Shape& shape) {
  size_t n = 1;
  for (size_t d = 1; d < shape.size(); ++d) n *= static_cast<size_t>(shape[d]);
  return n;
}

// One global row's values: a function of the array's seed and the row's global index only.
void FillRow(const Param& p, int64_t global_row, float* out, size_t n) {
  uint64_t s = p.seed ^ (static_cast<uint64_t>(global_row) * 0x2545F4914F6CDD1Dull);
  for (size_t i = 0; i < n; ++i) {
    const float v = NormalIsh(SplitMix(s));
    out[i] = p.scale ? 1.0f + 0.05f * v : 0.02f * v;
  }
}

// A hash of one global row's bytes and position; the state's checksum is the sum over all rows, which does not
// depend on how the rows are split.
uint64_t RowHash(const Param& p, int64_t global_row, const std::byte* bytes, size_t n) {
  uint64_t h = Mix(p.seed ^ Mix(static_cast<uint64_t>(global_row) + 1));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes + i, 8);
    h = (h ^ w) * 0x100000001B3ull;
  }
  for (; i < n; ++i) h = (h ^ static_cast<uint64_t>(bytes[i])) * 0x100000001B3ull;
  return Mix(h);
}

struct Rows {
  Param* p;
  int64_t begin, end;  // local rows
};

std::vector<Rows> RowBlocks(State& s) {
  std::vector<Rows> blocks;
  for (auto& p : s.params) {
    const int64_t rows = p.box.shape[0];
    const size_t row_bytes = RowElements(p.shape) * 4;
    const int64_t step = std::max<int64_t>(1, static_cast<int64_t>((4u << 20) / std::max<size_t>(1, row_bytes)));
    for (int64_t r = 0; r < rows; r += step) blocks.push_back({&p, r, std::min(rows, r + step)});
  }
  return blocks;
}

// Allocates and fills this process's rows; returns their checksum (summed over rows).
uint64_t Generate(State& s, unsigned threads) {
  for (auto& p : s.params) {
    p.shard = cairn::Array::Allocate(cairn::DType::kFloat32, p.box.shape);
    s.shard_bytes += p.shard.num_bytes();
  }
  auto blocks = RowBlocks(s);
  std::vector<uint64_t> sums(blocks.size(), 0);
  bench::ParallelFor(blocks.size(), [&](size_t i) {
    Param& p = *blocks[i].p;
    const size_t n = RowElements(p.shape);
    float* base = reinterpret_cast<float*>(p.shard.mutable_bytes().data());
    uint64_t sum = 0;
    for (int64_t r = blocks[i].begin; r < blocks[i].end; ++r) {
      float* row = base + static_cast<size_t>(r) * n;
      const int64_t global = p.box.origin[0] + r;
      FillRow(p, global, row, n);
      sum += RowHash(p, global, reinterpret_cast<const std::byte*>(row), n * 4);
    }
    sums[i] = sum;
  }, threads);
  uint64_t total = 0;
  for (uint64_t x : sums) total += x;
  return total;
}

cairn::Tree SaveTree(const State& s, const cairn::NamedSharding& rows) {
  std::vector<std::pair<cairn::KeyPath, cairn::Tree>> leaves;
  for (const auto& p : s.params)
    leaves.emplace_back(p.path, cairn::Tree(cairn::ShardedArray(cairn::DType::kFloat32, p.shape,
                                                                {cairn::Shard{p.box, p.replica_id, p.shard}}, rows)));
  return cairn::Tree::FromFlat(leaves);
}

cairn::Tree RestoreTarget(const State& s, const cairn::NamedSharding& rows, int process) {
  std::vector<std::pair<cairn::KeyPath, cairn::Tree>> leaves;
  for (const auto& p : s.params)
    leaves.emplace_back(p.path, cairn::Tree(cairn::ShardedArraySpec::ForProcess(cairn::DType::kFloat32, p.shape,
                                                                                rows, process)));
  return cairn::Tree::FromFlat(leaves);
}

// Empty when `back` holds exactly this process's rows of every array.
std::string Verify(const State& s, const cairn::Tree& back) {
  std::map<std::string, cairn::Tree> by_name;
  for (auto& [path, leaf] : back.Flatten()) by_name.emplace(cairn::ParamName(path), leaf);
  if (by_name.size() != s.params.size())
    return "restored " + std::to_string(by_name.size()) + " leaves, saved " + std::to_string(s.params.size());
  for (const auto& p : s.params) {
    auto it = by_name.find(p.name);
    if (it == by_name.end()) return "missing " + p.name;
    if (!it->second.is_sharded_array()) return p.name + " is not a sharded array";
    const auto& shards = it->second.sharded_array().shards();
    if (shards.size() != 1) return p.name + ": " + std::to_string(shards.size()) + " shards";
    if (!(shards[0].box == p.box)) return p.name + ": box " + shards[0].box.ToString() + ", wanted " + p.box.ToString();
    const auto& a = shards[0].data;
    if (a.dtype() != cairn::DType::kFloat32 || a.num_bytes() != p.shard.num_bytes())
      return p.name + ": wrong dtype or size";
    if (std::memcmp(a.bytes().data(), p.shard.bytes().data(), a.num_bytes()) != 0) return p.name + ": bytes differ";
  }
  return "";
}

// ---------------------------------------------------------------------------------------------------------------
// Timed regions across processes

constexpr auto kTimeout = std::chrono::seconds(600);

struct Bench {
  std::shared_ptr<cairn::ProcessGroup> group;
  int n = 1, p = 0;
  int step = 0;  // keeps barrier keys distinct

  void Barrier(const std::string& what) { group->Barrier("bench/" + what + "/" + std::to_string(step++), kTimeout); }

  std::vector<double> GatherDouble(double v, const std::string& what) {
    auto all = group->AllGather(std::string(reinterpret_cast<const char*>(&v), sizeof v),
                                "bench/" + what + "/" + std::to_string(step++), kTimeout);
    std::vector<double> out;
    for (auto& x : all) {
      double d = 0;
      std::memcpy(&d, x.data(), std::min(x.size(), sizeof d));
      out.push_back(d);
    }
    return out;
  }

  std::vector<std::string> GatherString(const std::string& v, const std::string& what) {
    return group->AllGather(v, "bench/" + what + "/" + std::to_string(step++), kTimeout);
  }

  // Barrier, fn, barrier. Returns {wall seconds (the slowest process's, from the first barrier to the second),
  // this process's own seconds in fn, gathered}.
  struct Timing {
    double wall = 0;
    std::vector<double> own;
  };
  Timing Timed(const std::string& what, const std::function<void()>& fn) {
    Barrier(what + "/start");
    auto a = Clock::now();
    fn();
    auto b = Clock::now();
    Barrier(what + "/end");
    auto c = Clock::now();
    Timing t;
    auto walls = GatherDouble(Seconds(a, c), what + "/wall");
    t.wall = *std::max_element(walls.begin(), walls.end());
    t.own = GatherDouble(Seconds(a, b), what + "/own");
    return t;
  }
};

json Measure(const std::vector<Bench::Timing>& reps, size_t bytes) {
  std::vector<double> secs;
  json own = json::array();
  for (auto& r : reps) {
    secs.push_back(r.wall);
    own.push_back(r.own);
  }
  const double best = *std::min_element(secs.begin(), secs.end());
  return json{{"seconds", secs},
              {"best_seconds", best},
              {"bytes", bytes},
              {"gib_per_s", static_cast<double>(bytes) / best / (1024.0 * 1024.0 * 1024.0)},
              {"process_seconds", own}};
}

void LogMeasure(const std::string& what, const json& m) {
  Log(what + ": best " + Fmt(m["best_seconds"].get<double>()) + " s, " + Fmt(m["gib_per_s"].get<double>(), 2) +
      " GiB/s aggregate");
}

cairn::CheckpointerOptions CkptOptions(const std::shared_ptr<cairn::ProcessGroup>& group) {
  cairn::CheckpointerOptions options;
  options.multiprocessing_options.process_group = group;
  options.multiprocessing_options.barrier_timeout_secs = 600;
  return options;
}

std::unique_ptr<cairn::CheckpointHandler> Handler(bool zstd) {
  cairn::PyTreeCheckpointHandlerOptions h;
  h.use_compression = zstd;
  return std::make_unique<cairn::PyTreeCheckpointHandler>(h);
}

json Save(Bench& b, const Options& o, const State& s, const cairn::Tree& tree, bool zstd, const fs::path& dir) {
  std::vector<Bench::Timing> reps;
  const std::string label = zstd ? "save_zstd" : "save_raw";
  for (int r = 0; r < o.reps; ++r) {
    if (b.p == 0) {
      RemoveTree(dir);
      ::sync();  // outside the timing, so that no repetition pays for another one's write-back
    }
    cairn::Checkpointer ckptr(Handler(zstd), CkptOptions(b.group));
    reps.push_back(b.Timed(label, [&] { ckptr.save(dir, cairn::args::PyTreeSave{tree}); }));
    Log(label + " rep " + std::to_string(r) + ": " + Fmt(reps.back().wall) + " s");
  }
  json m = Measure(reps, s.total_bytes);
  if (b.p == 0) m["bytes_on_disk"] = DiskUsage(dir);
  LogMeasure(label, m);
  return m;
}

json Restore(Bench& b, const State& s, const cairn::NamedSharding& rows, const fs::path& dir, int reps, bool cold,
             bool cold_wanted, const std::string& label) {
  std::vector<Bench::Timing> times;
  const cairn::Tree target = RestoreTarget(s, rows, b.p);
  std::string verify_error;
  bool verified = false;
  for (int r = 0; r < reps; ++r) {
    if (cold) {
      std::string why = b.p == 0 ? (cold_wanted ? DropCaches() : std::string("--no-cold")) : std::string();
      why = b.group->Broadcast(why, 0, "bench/" + label + "/drop/" + std::to_string(b.step++), kTimeout);
      if (!why.empty()) {
        Log(label + ": unavailable (" + why + ")");
        return json{{"unavailable", why}};
      }
    }
    cairn::Checkpointer ckptr(Handler(false), CkptOptions(b.group));
    cairn::Tree back;
    times.push_back(b.Timed(label, [&] { back = ckptr.restore(dir, cairn::args::PyTreeRestore{target}); }));
    if (r == 0) {
      auto errors = b.GatherString(Verify(s, back), label + "/verify");
      verified = true;
      for (int q = 0; q < b.n; ++q) {
        if (!errors[q].empty()) {
          verified = false;
          if (verify_error.empty()) verify_error = "process " + std::to_string(q) + ": " + errors[q];
        }
      }
      if (!verified) Log(label + ": RESTORED BYTES DIFFER: " + verify_error);
    }
  }
  json m = Measure(times, s.total_bytes);
  m["verified"] = verified;
  if (!verified) m["verify_error"] = verify_error;
  LogMeasure(label, m);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  Bench b;
  b.group = cairn::MpiProcessGroup();
  b.n = b.group->count();
  b.p = b.group->index();
  g_rank = b.p;
  Options o = ParseOptions(argc, argv);

  const cairn::NamedSharding rows{{b.n}, {"x"}, {{"x"}}};
  if (b.p == 0) fs::create_directories(o.dir);
  b.Barrier("dir");
  o.dir = fs::canonical(o.dir);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());

  json result;
  State s;
  try {
    s = MakeState(o, rows, b.p);
  } catch (const std::exception& e) {
    Log(std::string("cannot split the state over ") + std::to_string(b.n) + " processes: " + e.what());
    return 2;
  }
  {
    auto a = Clock::now();
    const uint64_t sum = Generate(s, std::max(1u, cores / static_cast<unsigned>(b.n)));
    const double secs = Seconds(a, Clock::now());
    auto sums = b.GatherString(std::to_string(sum), "checksum");
    auto shard_bytes = b.GatherString(std::to_string(s.shard_bytes), "shard_bytes");
    uint64_t total = 0;
    json per_process = json::array();
    for (int q = 0; q < b.n; ++q) {
      total += std::stoull(sums[q]);
      per_process.push_back(std::stoull(shard_bytes[q]));
    }
    char hex[32];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(total));
    result["state"] = {{"bytes", s.total_bytes},       {"arrays", s.params.size()}, {"dtype", "float32"},
                       {"d_model", s.d_model},         {"layers", o.layers},         {"vocab", s.vocab},
                       {"mlp_ratio", o.mlp_ratio},     {"checksum", hex},            {"shard_bytes", per_process},
                       {"generate_seconds_process_0", secs}};
    Log("state: " + std::to_string(s.params.size()) + " float32 arrays, d_model " + std::to_string(s.d_model) +
        ", " + Fmt(s.total_bytes / 1048576.0, 1) + " MiB over " + std::to_string(b.n) + " processes, checksum " +
        hex + ", generated in " + Fmt(secs, 2) + " s");
  }
  result["config"] = {{"processes", b.n},
                      {"dir", o.dir.string()},
                      {"reps", o.reps},
                      {"cores", cores},
                      {"sharding", json::parse(rows.ToOrbaxJson())},
                      {"zstd", o.zstd}};

  const cairn::Tree tree = SaveTree(s, rows);
  const fs::path raw_dir = o.dir / "mp_raw", zstd_dir = o.dir / "mp_zstd";
  int rc = 0;
  try {
    result["save_raw"] = Save(b, o, s, tree, false, raw_dir);
    // The checkpoint was just written: its pages are cached. One untimed restore makes sure of it.
    {
      cairn::Checkpointer ckptr(Handler(false), CkptOptions(b.group));
      ckptr.restore(raw_dir, cairn::args::PyTreeRestore{RestoreTarget(s, rows, b.p)});
    }
    result["restore_warm"] = Restore(b, s, rows, raw_dir, o.reps, false, o.cold, "restore_warm");
    result["restore_cold"] = Restore(b, s, rows, raw_dir, 1, true, o.cold, "restore_cold");
    if (o.zstd) {
      result["save_zstd"] = Save(b, o, s, tree, true, zstd_dir);
      result["restore_zstd_warm"] = Restore(b, s, rows, zstd_dir, o.reps, false, o.cold, "restore_zstd_warm");
    }
  } catch (const std::exception& e) {
    std::cerr << "cairn_bench_mp: process " << b.p << ": " << e.what() << "\n";
    result["error"] = std::string("process ") + std::to_string(b.p) + ": " + e.what();
    rc = 1;
  }
  if (rc == 0) b.Barrier("done");
  if (b.p == 0 && !o.keep) {
    RemoveTree(raw_dir);
    RemoveTree(zstd_dir);
  }
  if (b.p == 0) {
    const std::string text = result.dump(1);
    if (o.json_path.empty()) std::cout << text << "\n";
    else std::ofstream(o.json_path) << text << "\n";
  }
  return rc;
}
