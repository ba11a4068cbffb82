// cairn_bench: the C++ half of `make bench` (bench/run.py is the orchestrator).
//
// Generates a transformer-shaped training state deterministically, then measures, in one process and on the same
// bytes:
//   floors  one memcpy of the state; a plain sequential write + fsync of it to one file; a sequential read of that
//           file, warm (page cache) and cold (after dropping the page cache, when allowed);
//   cairn   synchronous durable save (uncompressed and zstd), restore (warm and cold), an AsyncCheckpointer's
//           blocking time and time to commit with owned and with shared immutable arrays, and peak RSS per phase.
// Leaves the floor file and a manifest in <dir>/floor/ so that bench/peers.py measures the peers on the same
// bytes, and writes every number as JSON (--json).
//
// Timed operations are the best of --reps repetitions; a cold read is one repetition after dropping the cache.
// Before every timed repetition the previous output is removed and the file system synced (outside the timing),
// so that no repetition pays for another one's write-back.

#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
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
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/async_checkpointer.h"
#include "cairn/cairn.h"
#include "bench_common.h"
#include "zarr/blosc_codec.h"
#include "core/zstd.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using bench::Clock;
using bench::DiskUsage;
using bench::DropCaches;
using bench::Fmt;
using bench::Fnv1a;
using bench::NormalIsh;
using bench::ParallelFor;
using bench::RemoveTree;
using bench::Seconds;
using bench::SplitMix;

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Options

struct Options {
  double size_gib = 2.0;
  fs::path dir;
  fs::path json_path;
  int reps = 3;
  int layers = 8;
  int64_t vocab = 32000;
  int mlp_ratio = 4;
  std::string mix = "train";  // train: bf16 params + f32 Adam mu/nu; f32; bf16
  bool cold = true;           // drop the page cache for the cold reads (needs root)
  bool keep = false;          // keep the checkpoints (the floor file and manifest are always kept)
  bool verify = true;         // check the restored bytes once
  std::vector<std::string> phases = {"async", "floors", "sync", "restore", "codecs"};
};

Options ParseOptions(int argc, char** argv) {
  Options o;
  const bench::CommandLine cl =
      bench::CommandLine("cairn_bench",
                         "cairn_bench --dir DIR [--json FILE] [--size-gib 2] [--reps 3] [--layers 8] [--vocab 32000]\n"
                         "                   [--mlp-ratio 4] [--mix train|f32|bf16] [--no-cold] [--no-verify] [--keep]\n"
                         "                   [--phases async,floors,sync,restore,codecs]")
          .Value("--size-gib", &o.size_gib)
          .Value("--dir", &o.dir)
          .Value("--json", &o.json_path)
          .Value("--reps", &o.reps)
          .Value("--layers", &o.layers)
          .Value("--vocab", &o.vocab)
          .Value("--mlp-ratio", &o.mlp_ratio)
          .Value("--mix", &o.mix)
          .Switch("--no-cold", &o.cold, false)
          .Switch("--no-verify", &o.verify, false)
          .Switch("--keep", &o.keep, true)
          .List("--phases", &o.phases);
  cl.Parse(argc, argv);
  if (o.dir.empty()) cl.Usage("--dir is required");
  if (o.size_gib <= 0 || o.reps < 1 || o.layers < 1 || o.vocab < 1 || o.mlp_ratio < 1) cl.Usage("bad sizes");
  if (o.mix != "train" && o.mix != "f32" && o.mix != "bf16") cl.Usage("--mix is train, f32 or bf16");
  return o;
}

bool HasPhase(const Options& o, const std::string& p) {
  return std::find(o.phases.begin(), o.phases.end(), p) != o.phases.end();
}

// ---------------------------------------------------------------------------------------------------------------
// Small system helpers

void Log(const std::string& line) { std::cerr << "[cairn_bench] " << line << std::endl; }

[[noreturn]] void Die(const std::string& what) {
  std::cerr << "cairn_bench: " << what << ": " << std::strerror(errno) << "\n";
  std::exit(1);
}

int64_t StatusKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::stoll(line.substr(n + 1));
  }
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0, `echo 5 > /proc/self/clear_refs`).
bool ResetHwm() {
  int fd = ::open("/proc/self/clear_refs", O_WRONLY);
  if (fd < 0) return false;
  bool ok = ::write(fd, "5", 1) == 1;
  ::close(fd);
  return ok;
}

// Peak RSS of one phase: the high-water mark above the RSS at its start.
struct RssProbe {
  bool reset_ok = false;
  int64_t start_kb = 0;
  void Start() {
    malloc_trim(0);
    reset_ok = ResetHwm();
    start_kb = StatusKb("VmRSS");
  }
  json Finish() const {
    const int64_t hwm = StatusKb("VmHWM");
    json j{{"rss_start_bytes", start_kb * 1024}, {"peak_rss_bytes", hwm * 1024},
           {"peak_rss_above_start_bytes", (hwm - start_kb) * 1024}, {"hwm_reset", reset_ok}};
    if (!reset_ok) j["note"] = "could not reset VmHWM: the peak is the process-lifetime high-water mark";
    return j;
  }
};

void SyncAll() { ::sync(); }

// Memory that the kernel maps fresh (untouched pages) and that is unmapped when freed, so that RSS and
// first-touch costs are what they look like.
struct MappedBuffer {
  std::byte* data = nullptr;
  size_t size = 0;
  explicit MappedBuffer(size_t n) : size(n) {
    void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) Die("mmap");
    data = static_cast<std::byte*>(p);
  }
  ~MappedBuffer() { ::munmap(data, size); }
  MappedBuffer(const MappedBuffer&) = delete;
  MappedBuffer& operator=(const MappedBuffer&) = delete;
};

// ---------------------------------------------------------------------------------------------------------------
// The state: transformer-shaped parameters and, for the "train" mix, Adam's first and second moments.

struct ArrayInfo {
  std::string name;  // Orbax parameter name, e.g. "params.layers_03.attn.q"
  cairn::KeyPath path;
  cairn::DType dtype;
  cairn::Shape shape;
  size_t offset = 0;  // in the floor file
  size_t bytes = 0;
  cairn::Array array;  // owned
  enum class Kind { kWeight, kScale, kMu, kNu } kind = Kind::kWeight;
};

struct Layout {
  int64_t d_model = 0;
  std::vector<ArrayInfo> arrays;
  size_t total_bytes = 0;
};

struct Group {
  std::string root;  // "params" or "opt_state.mu" ...
  std::vector<std::string> prefix;
  cairn::DType dtype;
  ArrayInfo::Kind kind;  // kWeight stands for params (kScale decided per shape)
};

std::vector<Group> Groups(const Options& o) {
  using cairn::DType;
  if (o.mix == "f32") return {{"params", {"params"}, DType::kFloat32, ArrayInfo::Kind::kWeight}};
  if (o.mix == "bf16") return {{"params", {"params"}, DType::kBFloat16, ArrayInfo::Kind::kWeight}};
  return {{"params", {"params"}, DType::kBFloat16, ArrayInfo::Kind::kWeight},
          {"mu", {"opt_state", "mu"}, DType::kFloat32, ArrayInfo::Kind::kMu},
          {"nu", {"opt_state", "nu"}, DType::kFloat32, ArrayInfo::Kind::kNu}};
}

bench::TransformerShape Model(const Options& o) { return {o.layers, o.vocab, o.mlp_ratio}; }

size_t LayoutBytes(const Options& o, int64_t d) {
  size_t total = 0;
  for (const auto& g : Groups(o))
    for (const auto& p : bench::ParamShapes(Model(o), d)) total += cairn::NumBytes(g.dtype, p.shape);
  return total;
}

Layout MakeLayout(const Options& o) {
  const size_t target = static_cast<size_t>(o.size_gib * 1024.0 * 1024.0 * 1024.0);
  const int64_t d = bench::ClosestDModel(target, [&](int64_t dm) { return LayoutBytes(o, dm); });

  Layout layout;
  layout.d_model = d;
  for (const auto& g : Groups(o)) {
    for (const auto& p : bench::ParamShapes(Model(o), d)) {
      ArrayInfo a;
      std::vector<std::string> keys = g.prefix;
      keys.insert(keys.end(), p.keys.begin(), p.keys.end());
      for (const auto& k : keys) {
        a.path.push_back(cairn::KeyEntry{k, cairn::KeyType::kDict});
        a.name += (a.name.empty() ? "" : ".") + k;
      }
      a.dtype = g.dtype;
      a.shape = p.shape;
      a.kind = g.kind == ArrayInfo::Kind::kWeight ? (p.scale ? ArrayInfo::Kind::kScale : ArrayInfo::Kind::kWeight)
                                                 : g.kind;
      a.bytes = cairn::NumBytes(a.dtype, a.shape);
      layout.arrays.push_back(std::move(a));
    }
  }
  // JAX order (sorted by key path), which is also the order of the floor file and of the manifest.
  std::sort(layout.arrays.begin(), layout.arrays.end(), [](const ArrayInfo& a, const ArrayInfo& b) {
    std::vector<std::string> ka, kb;
    for (auto& e : a.path) ka.push_back(e.key);
    for (auto& e : b.path) kb.push_back(e.key);
    return ka < kb;
  });
  for (auto& a : layout.arrays) {
    a.offset = layout.total_bytes;
    layout.total_bytes += a.bytes;
  }
  return layout;
}

inline uint16_t ToBFloat16(float f) {  // round to nearest even (values here are finite)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

inline float Value(ArrayInfo::Kind kind, uint64_t r) {
  const float n = NormalIsh(r);
  switch (kind) {
    case ArrayInfo::Kind::kWeight: return 0.02f * n;
    case ArrayInfo::Kind::kScale: return 1.0f + 0.05f * n;
    case ArrayInfo::Kind::kMu: return 1e-3f * n;
    case ArrayInfo::Kind::kNu: return 1e-6f * n * n + 1e-9f;
  }
  return n;
}

void FillBlock(ArrayInfo& a, size_t begin, size_t end) {
  uint64_t s = Fnv1a(a.name) ^ (begin * 0x2545F4914F6CDD1Dull);
  std::byte* out = a.array.mutable_bytes().data();
  if (a.dtype == cairn::DType::kFloat32) {
    float* f = reinterpret_cast<float*>(out);
    for (size_t i = begin; i < end; ++i) f[i] = Value(a.kind, SplitMix(s));
  } else {
    uint16_t* h = reinterpret_cast<uint16_t*>(out);
    for (size_t i = begin; i < end; ++i) h[i] = ToBFloat16(Value(a.kind, SplitMix(s)));
  }
}

void Generate(Layout& layout) {
  struct Block {
    ArrayInfo* a;
    size_t begin, end;
  };
  std::vector<Block> blocks;
  constexpr size_t kBlock = 1 << 20;  // elements; block boundaries fix the bytes, whatever the thread count
  for (auto& a : layout.arrays) {
    a.array = cairn::Array::Allocate(a.dtype, a.shape);
    const size_t n = static_cast<size_t>(a.array.num_elements());
    for (size_t b = 0; b < n; b += kBlock) blocks.push_back({&a, b, std::min(n, b + kBlock)});
  }
  ParallelFor(blocks.size(), [&](size_t i) { FillBlock(*blocks[i].a, blocks[i].begin, blocks[i].end); });
}

cairn::Tree OwnedTree(const Layout& layout) {
  std::vector<std::pair<cairn::KeyPath, cairn::Tree>> leaves;
  for (const auto& a : layout.arrays) leaves.emplace_back(a.path, cairn::Tree(a.array));
  return cairn::Tree::FromFlat(leaves);
}

// The same bytes handed over as shared immutable buffers (no copy: each aliases the owned array it came from).
cairn::Tree SharedTree(const Layout& layout) {
  std::vector<std::pair<cairn::KeyPath, cairn::Tree>> leaves;
  for (const auto& a : layout.arrays) {
    auto keep = std::make_shared<cairn::Array>(a.array);
    std::shared_ptr<const void> bytes(keep, keep->bytes().data());
    leaves.emplace_back(a.path, cairn::Tree(cairn::Array::FromShared(bytes, a.dtype, a.shape)));
  }
  return cairn::Tree::FromFlat(leaves);
}

// ---------------------------------------------------------------------------------------------------------------
// Measurement records

json Measure(const std::vector<double>& secs, size_t bytes) {
  double best = *std::min_element(secs.begin(), secs.end());
  return json{{"seconds", secs}, {"best_seconds", best}, {"bytes", bytes},
              {"gib_per_s", static_cast<double>(bytes) / best / (1024.0 * 1024.0 * 1024.0)}};
}

// Two measurements of one repetition each, merged: their seconds side by side, the better best.
json MergeMeasures(const json& a, const json& b, size_t bytes) {
  std::vector<double> secs = a.at("seconds").get<std::vector<double>>();
  for (double x : b.at("seconds")) secs.push_back(x);
  json m = a;
  m.update(Measure(secs, bytes));
  return m;
}

void LogMeasure(const std::string& what, const json& m) {
  Log(what + ": best " + Fmt(m["best_seconds"].get<double>()) + " s, " + Fmt(m["gib_per_s"].get<double>(), 2) +
      " GiB/s");
}

// ---------------------------------------------------------------------------------------------------------------
// Floors

void WriteAll(int fd, const std::byte* p, size_t n, const char* what) {
  constexpr size_t kMaxWrite = 64u << 20;
  while (n > 0) {
    ssize_t w = ::write(fd, p, std::min(n, kMaxWrite));
    if (w < 0) {
      if (errno == EINTR) continue;
      Die(what);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Writes every array, in order, into one new file with large writes, then fsyncs the file (and its directory).
void WriteFloorFile(const Layout& layout, const fs::path& file) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("open " + file.string());
  for (const auto& a : layout.arrays) WriteAll(fd, a.array.bytes().data(), a.bytes, "write floor file");
  if (::fsync(fd) != 0) Die("fsync floor file");
  ::close(fd);
  int dfd = ::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void ReadFloorFile(const fs::path& file, std::byte* dst, size_t n) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die("open " + file.string());
  constexpr size_t kMaxRead = 16u << 20;
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::read(fd, dst + done, std::min(n - done, kMaxRead));
    if (r < 0) {
      if (errno == EINTR) continue;
      Die("read floor file");
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  ::close(fd);
  if (done != n) {
    errno = EIO;
    Die("short read of floor file");
  }
}

void WriteManifest(const Layout& layout, const fs::path& path) {
  json arrays = json::array();
  for (const auto& a : layout.arrays)
    arrays.push_back({{"name", a.name}, {"dtype", std::string(cairn::DTypeName(a.dtype))}, {"shape", a.shape},
                      {"offset", a.offset}, {"bytes", a.bytes}});
  std::ofstream(path) << json{{"file", "state.bin"}, {"total_bytes", layout.total_bytes}, {"arrays", arrays}}.dump(1);
}

// One sequential read of the floor file after dropping the page cache (into a pre-faulted buffer, as the warm
// reads); `reason` is set when the cache cannot be dropped.
json ColdFloorRead(const Layout& layout, const fs::path& file, std::string& reason, bool prefault = true) {
  MappedBuffer dst(layout.total_bytes);
  if (prefault) std::memset(dst.data, 0, layout.total_bytes);
  if (reason.empty()) reason = DropCaches();
  if (!reason.empty()) {
    Log("floor read cold: unavailable (" + reason + ")");
    return json{{"unavailable", reason}};
  }
  auto a = Clock::now();
  ReadFloorFile(file, dst.data, layout.total_bytes);
  json m = Measure({Seconds(a, Clock::now())}, layout.total_bytes);
  LogMeasure(prefault ? "floor read cold" : "floor read cold (fresh pages)", m);
  return m;
}

// memcpy, write + fsync, warm reads; the cold read too when `cold_here` (else it runs right before cairn's cold
// restore, so that the two single-shot cold numbers are taken under the same conditions).
json RunFloors(const Options& o, const Layout& layout, bool cold_here, std::string& cold_reason) {
  json out;
  const size_t n = layout.total_bytes;
  const fs::path floor_dir = o.dir / "floor";
  fs::create_directories(floor_dir);
  const fs::path file = floor_dir / "state.bin";

  {  // memcpy: one memcpy per array into one buffer (pre-faulted), single thread.
    MappedBuffer dst(n);
    auto copy_all = [&] {
      for (const auto& a : layout.arrays) std::memcpy(dst.data + a.offset, a.array.bytes().data(), a.bytes);
    };
    auto t0 = Clock::now();
    copy_all();  // first touch: the kernel supplies fresh pages as it goes
    auto t1 = Clock::now();
    out["memcpy_first_touch"] = Measure({Seconds(t0, t1)}, n);
    {  // the same into fresh pages that the kernel may back with transparent huge pages (as numpy asks for)
      MappedBuffer thp(n);
      const bool advised = ::madvise(thp.data, n, MADV_HUGEPAGE) == 0;
      auto a = Clock::now();
      for (const auto& arr : layout.arrays) std::memcpy(thp.data + arr.offset, arr.array.bytes().data(), arr.bytes);
      out["memcpy_first_touch_thp"] = Measure({Seconds(a, Clock::now())}, n);
      out["memcpy_first_touch_thp"]["madvise_hugepage"] = advised;
      LogMeasure("floor memcpy (first touch, MADV_HUGEPAGE)", out["memcpy_first_touch_thp"]);
    }
    std::vector<double> secs;
    for (int r = 0; r < o.reps; ++r) {
      auto a = Clock::now();
      copy_all();
      secs.push_back(Seconds(a, Clock::now()));
    }
    out["memcpy"] = Measure(secs, n);
    LogMeasure("floor memcpy (pre-faulted)", out["memcpy"]);
    LogMeasure("floor memcpy (first touch)", out["memcpy_first_touch"]);
  }

  {  // write + fsync
    std::vector<double> secs;
    for (int r = 0; r < o.reps; ++r) {
      std::error_code ec;
      fs::remove(file, ec);
      SyncAll();
      auto a = Clock::now();
      WriteFloorFile(layout, file);
      secs.push_back(Seconds(a, Clock::now()));
    }
    out["write_fsync"] = Measure(secs, n);
    LogMeasure("floor write+fsync", out["write_fsync"]);
    WriteManifest(layout, floor_dir / "manifest.json");
  }

  {  // reads into one pre-faulted buffer
    MappedBuffer dst(n);
    std::memset(dst.data, 0, n);
    std::vector<double> secs;
    ReadFloorFile(file, dst.data, n);  // make sure every page is cached, whatever the write left
    for (int r = 0; r < o.reps; ++r) {
      auto a = Clock::now();
      ReadFloorFile(file, dst.data, n);
      secs.push_back(Seconds(a, Clock::now()));
    }
    out["read_warm"] = Measure(secs, n);
    LogMeasure("floor read warm", out["read_warm"]);
    // Information: the same read into fresh memory (huge pages asked for, as Array::Allocate does), which is what a
    // restore that returns new arrays gets: the kernel zeroes every page first.
    std::vector<double> fresh_secs;
    for (int r = 0; r < o.reps; ++r) {
      MappedBuffer fresh(n);
      ::madvise(fresh.data, n, MADV_HUGEPAGE);
      auto a = Clock::now();
      ReadFloorFile(file, fresh.data, n);
      fresh_secs.push_back(Seconds(a, Clock::now()));
    }
    out["read_warm_fresh_pages"] = Measure(fresh_secs, n);
    LogMeasure("floor read warm (fresh pages, MADV_HUGEPAGE)", out["read_warm_fresh_pages"]);
    if (cold_here) out["read_cold"] = ColdFloorRead(layout, file, cold_reason);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// cairn

// verify_checksums=false only for measuring what checking every chunk's CRC-32C on restore costs.
std::unique_ptr<cairn::CheckpointHandler> Handler(bool zstd, bool verify_checksums = true) {
  cairn::PyTreeCheckpointHandlerOptions h;
  h.use_compression = zstd;
  h.verify_checksums = verify_checksums;
  return std::make_unique<cairn::StandardCheckpointHandler>(h);
}

// Byte-for-byte comparison of a restored tree with the state.
std::string Verify(const Layout& layout, const cairn::Tree& back) {
  auto leaves = back.Flatten();
  std::map<std::string, const cairn::Tree*> by_name;
  for (auto& [path, leaf] : leaves) by_name[cairn::ParamName(path)] = &leaf;
  if (by_name.size() != layout.arrays.size())
    return "restored " + std::to_string(by_name.size()) + " leaves, saved " + std::to_string(layout.arrays.size());
  for (const auto& a : layout.arrays) {
    auto it = by_name.find(a.name);
    if (it == by_name.end() || !it->second->is_array()) return "missing " + a.name;
    const auto& r = it->second->array();
    if (r.dtype() != a.dtype || r.shape() != a.shape) return "wrong dtype or shape for " + a.name;
    if (std::memcmp(r.bytes().data(), a.array.bytes().data(), a.bytes) != 0) return "different bytes in " + a.name;
  }
  return "";
}

json SyncSave(const Options& o, const Layout& layout, const cairn::Tree& state, bool zstd, const fs::path& dir) {
  std::vector<double> secs;
  RssProbe rss;
  rss.Start();
  for (int r = 0; r < o.reps; ++r) {
    RemoveTree(dir);
    SyncAll();
    cairn::Checkpointer ckptr(Handler(zstd));
    auto a = Clock::now();
    ckptr.save(dir, cairn::args::StandardSave{state});
    secs.push_back(Seconds(a, Clock::now()));
  }
  json m = Measure(secs, layout.total_bytes);
  m["rss"] = rss.Finish();
  m["bytes_on_disk"] = DiskUsage(dir);
  LogMeasure(std::string("cairn sync save ") + (zstd ? "zstd" : "raw"), m);
  return m;
}

// `reps` timed restores (`restore_once`, which may do more than restore, such as read what it restored), the first
// compared with the state when `verify`; `before_each` runs outside the timing (it may drop the page cache, and
// returns why it could not). Best time, peak extra RSS, and the comparison's result.
json TimedRestores(const Layout& layout, int reps, bool verify, const std::string& label,
                   const std::function<cairn::Tree(json& out)>& restore_once,
                   const std::function<std::string()>& before_each = [] { return std::string(); }) {
  std::vector<double> secs;
  RssProbe rss;
  rss.Start();
  json out = json::object();
  for (int r = 0; r < reps; ++r) {
    if (std::string why = before_each(); !why.empty()) return json{{"unavailable", why}};
    auto a = Clock::now();
    cairn::Tree back = restore_once(out);
    secs.push_back(Seconds(a, Clock::now()));
    if (verify && r == 0) {
      std::string diff = Verify(layout, back);
      out["verified"] = diff.empty();
      if (!diff.empty()) {
        out["verify_error"] = diff;
        Log("RESTORE MISMATCH (" + label + "): " + diff);
      }
    }
  }
  json m = Measure(secs, layout.total_bytes);
  m.update(out);
  m["rss"] = rss.Finish();
  return m;
}

json Restore(const Layout& layout, const fs::path& dir, int reps, bool cold, bool verify,
             const std::string& cold_reason, bool verify_checksums = true) {
  if (cold && !cold_reason.empty()) return json{{"unavailable", cold_reason}};
  return TimedRestores(
      layout, reps, verify, cold ? "cold" : "warm",
      [&](json&) { return cairn::Checkpointer(Handler(false, verify_checksums)).restore(dir); },
      [&] { return cold ? DropCaches() : std::string(); });
}

// Restores with cairn's RestoreArgs, from the uncompressed checkpoint: "fill" reads into arrays the caller already
// has (fill_target; allocated and touched once before, as a training loop's own arrays are); "lazy" maps the files
// (on-access checks) and returns; "lazy_touch" does that and then reads one byte of every page (each 64 KiB block
// paged in and checked); "lazy_up_front_touch" checks every block before returning, then reads every page.
json RestoreWithArgs(const Layout& layout, const cairn::Tree& state, const fs::path& dir, int reps,
                     const std::string& mode, bool verify) {
  cairn::RestoreArgs args;
  args.fill_target = mode == "fill";
  args.lazy = mode != "fill";
  args.lazy_check = mode == "lazy_up_front_touch" ? cairn::RestoreArgs::LazyCheck::kUpFront
                                                  : cairn::RestoreArgs::LazyCheck::kOnAccess;
  const bool touch = mode == "lazy_touch" || mode == "lazy_up_front_touch";
  cairn::Tree target = cairn::Tree::None();
  if (args.fill_target) {
    target = state.Map([](const cairn::KeyPath&, const cairn::Tree& leaf) -> cairn::Tree {
      return leaf.is_array() ? cairn::Tree(cairn::Array::Zeros(leaf.array().dtype(), leaf.array().shape())) : leaf;
    });
  }
  return TimedRestores(layout, reps, verify, mode, [&](json& out) {
    cairn::Checkpointer ckptr(std::make_unique<cairn::PyTreeCheckpointHandler>());
    cairn::Tree back = ckptr.restore(dir, cairn::args::PyTreeRestore{target, {{"", args}}});
    if (touch) {
      uint64_t sum = 0;
      for (const auto& [path, leaf] : back.Flatten()) {
        if (!leaf.is_array()) continue;
        const auto bytes = leaf.array().bytes();
        for (size_t at = 0; at < bytes.size(); at += 4096) sum += static_cast<uint8_t>(bytes[at]);
      }
      out["touched_sum"] = sum;  // (keeps the reads)
    }
    return back;
  });
}

// The caller writing its arrays right after save() returns, as a training step would: one 4-byte store into every
// `stride`-th page of every array (the value it already holds, so that later phases still verify). 0: no writes.
void WritePagesDuringSave(const cairn::Tree& state, size_t stride) {
  if (stride == 0) return;
  state.Map([&](const cairn::KeyPath&, const cairn::Tree& leaf) -> cairn::Tree {
    if (!leaf.is_array()) return leaf;
    cairn::Array array = leaf.array();  // shares the bytes
    if (array.ownership() != cairn::Ownership::kOwned) return leaf;
    auto bytes = array.mutable_bytes();
    for (size_t offset = 0; offset < bytes.size(); offset += stride * 4096) {
      volatile std::byte* p = bytes.data() + offset;
      *p = *p;
    }
    return leaf;
  });
}

json AsyncSave(const Options& o, const Layout& layout, const cairn::Tree& state, const fs::path& dir,
               const std::string& label, size_t write_stride = 0, bool copy_on_write = true) {
  std::vector<double> blocked, commit, writes;
  std::vector<json> reps;
  RssProbe rss;
  rss.Start();
  {
    cairn::AsyncOptions async;
    async.copy_on_write = copy_on_write;
    cairn::AsyncCheckpointer ckptr(Handler(false), async);
    for (int r = 0; r < o.reps; ++r) {
      RemoveTree(dir);
      SyncAll();
      auto a = Clock::now();
      ckptr.save(dir, cairn::args::StandardSave{state});
      auto b = Clock::now();
      WritePagesDuringSave(state, write_stride);
      auto w = Clock::now();
      ckptr.wait_until_finished();
      auto c = Clock::now();
      blocked.push_back(Seconds(a, b));
      commit.push_back(Seconds(a, c));
      writes.push_back(Seconds(b, w));
      Log("cairn async save " + label + " rep " + std::to_string(r) + ": blocked " + Fmt(Seconds(a, b) * 1e3, 3) +
          " ms, caller's writes " + Fmt(Seconds(b, w) * 1e3, 3) + " ms, committed after " + Fmt(Seconds(a, c)) +
          " s");
    }
    ckptr.close();
  }
  json m{{"blocked", Measure(blocked, layout.total_bytes)},
         {"commit", Measure(commit, layout.total_bytes)},
         {"first_blocked_seconds", blocked.front()},
         {"write_stride_pages", write_stride},
         {"copy_on_write", copy_on_write},
         {"rss", rss.Finish()}};
  if (write_stride) m["writes"] = Measure(writes, layout.total_bytes);
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Codecs: what each compressor makes of the state's kinds of data (bfloat16 weights, float32 Adam moments), each
// array one chunk as Orbax stores an unsharded array, on one core. The numbers behind the default (docs/format.md).

json RunCodecs(const Layout& layout) {
  constexpr size_t kPerKind = size_t{48} << 20;  // bytes of each kind measured: enough for stable rates
  struct Kind {
    const char* name;
    std::vector<const ArrayInfo*> arrays;
    size_t bytes = 0;
  };
  std::vector<Kind> kinds = {{"bf16 weights", {}}, {"f32 Adam mu", {}}, {"f32 Adam nu", {}}};
  for (const auto& a : layout.arrays) {
    Kind& k = kinds[a.kind == ArrayInfo::Kind::kMu ? 1 : a.kind == ArrayInfo::Kind::kNu ? 2 : 0];
    if (a.kind == ArrayInfo::Kind::kScale || k.bytes >= kPerKind) continue;
    k.arrays.push_back(&a);
    k.bytes += a.bytes;
  }
  struct Codec {
    std::string name;
    std::function<std::string(std::string_view, size_t)> encode;
    std::function<void(std::string_view, char*, size_t)> decode;
  };
  auto zstd_decode = [](std::string_view in, char* out, size_t n) { cairn::ZstdDecompressInto(in, out, n, "bench"); };
  auto blosc = [](const char* cname, int clevel) {
    cairn::zarr::BloscConfig c;
    c.cname = cname;
    c.clevel = clevel;
    c.shuffle = 1;
    return [c](std::string_view in, size_t item) { return cairn::zarr::BloscCompress(in, c, item); };
  };
  auto blosc_decode = [](std::string_view in, char* out, size_t n) { cairn::zarr::BloscDecompressInto(in, out, n, "bench"); };
  const std::vector<Codec> codecs = {
      {"zstd-1 always", [](std::string_view in, size_t) { return cairn::ZstdCompress(in, 1); }, zstd_decode},
      {"zstd-3 always", [](std::string_view in, size_t) { return cairn::ZstdCompress(in, 3); }, zstd_decode},
      {"zstd-1 adaptive", [](std::string_view in, size_t) { return cairn::ZstdCompressAdaptive(in, 1); },
       zstd_decode},
      {"zstd raw blocks", [](std::string_view in, size_t) { return cairn::ZstdRawFrame(in); }, zstd_decode},
      {"blosc lz4-5 shuf", blosc("lz4", 5), blosc_decode},
      {"blosc zstd-1 shuf", blosc("zstd", 1), blosc_decode},
  };
  json out = json::array();
  for (const auto& k : kinds) {
    if (k.arrays.empty()) continue;
    // One untimed round first, so that the first codec measured does not pay for the allocator's and the page
    // cache's warm-up alone.
    for (const ArrayInfo* a : k.arrays) {
      const auto bytes = a->array.bytes();
      const std::string enc = codecs[0].encode(
          std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), cairn::ItemSize(a->dtype));
      std::string back(bytes.size(), '\0');
      codecs[0].decode(enc, back.data(), back.size());
    }
    for (const auto& c : codecs) {
      size_t stored = 0;
      double encode_s = 0, decode_s = 0;
      for (const ArrayInfo* a : k.arrays) {
        const auto bytes = a->array.bytes();
        const std::string_view in(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        auto t = Clock::now();
        const std::string enc = c.encode(in, cairn::ItemSize(a->dtype));
        encode_s += Seconds(t, Clock::now());
        stored += enc.size();
        std::string back(in.size(), '\0');
        t = Clock::now();
        c.decode(enc, back.data(), back.size());
        decode_s += Seconds(t, Clock::now());
        if (back != in) throw std::runtime_error("codec " + c.name + " did not round-trip " + a->name);
      }
      const double gib = k.bytes / 1073741824.0;
      json row = {{"data", k.name}, {"codec", c.name}, {"bytes", k.bytes}, {"stored_bytes", stored},
                  {"ratio", static_cast<double>(stored) / k.bytes}, {"encode_seconds", encode_s},
                  {"decode_seconds", decode_s}, {"encode_gib_per_s", gib / encode_s},
                  {"decode_gib_per_s", gib / decode_s}};
      Log("codec " + c.name + " on " + k.name + ": ratio " + Fmt(row["ratio"].get<double>(), 3) + ", encode " +
          Fmt(gib / encode_s, 2) + " GiB/s, decode " + Fmt(gib / decode_s, 2) + " GiB/s (one core)");
      out.push_back(row);
    }
  }
  return out;
}

int main(int argc, char** argv) {
  Options o = ParseOptions(argc, argv);
  fs::create_directories(o.dir);
  o.dir = fs::canonical(o.dir);

  json result;
  struct statfs sfs{};
  std::string fstype = "unknown";
  if (::statfs(o.dir.c_str(), &sfs) == 0) {
    std::ostringstream ss;
    ss << "0x" << std::hex << static_cast<unsigned long>(sfs.f_type);
    fstype = ss.str();
  }

  Layout layout = MakeLayout(o);
  {
    RssProbe rss;
    rss.Start();
    auto a = Clock::now();
    Generate(layout);
    double secs = Seconds(a, Clock::now());
    size_t f32 = 0, bf16 = 0;
    for (auto& arr : layout.arrays) (arr.dtype == cairn::DType::kFloat32 ? f32 : bf16)++;
    json shapes = json::array();
    for (auto& arr : layout.arrays) shapes.push_back({{"name", arr.name}, {"dtype", std::string(cairn::DTypeName(arr.dtype))}, {"shape", arr.shape}});
    result["state"] = {{"bytes", layout.total_bytes},     {"arrays", layout.arrays.size()},
                       {"float32_arrays", f32},           {"bfloat16_arrays", bf16},
                       {"d_model", layout.d_model},       {"layers", o.layers},
                       {"vocab", o.vocab},                {"mlp_ratio", o.mlp_ratio},
                       {"mix", o.mix},                    {"generate_seconds", secs},
                       {"largest_array_bytes", std::max_element(layout.arrays.begin(), layout.arrays.end(), [](auto& x, auto& y) { return x.bytes < y.bytes; })->bytes},
                       {"shapes", shapes}};
    Log("state: " + std::to_string(layout.arrays.size()) + " arrays (" + std::to_string(f32) + " float32, " +
        std::to_string(bf16) + " bfloat16), d_model " + std::to_string(layout.d_model) + ", " +
        Fmt(layout.total_bytes / 1048576.0, 1) + " MiB, generated in " + Fmt(secs, 2) + " s");
  }
  result["config"] = {{"dir", o.dir.string()},
                      {"fs_type", fstype},
                      {"reps", o.reps},
                      {"cores", std::thread::hardware_concurrency()},
                      {"euid", ::geteuid()}};

  const cairn::Tree state = OwnedTree(layout);

  // Async first, while the process holds little besides the state, so that its RSS is easy to read.
  if (HasPhase(o, "async")) {
    // Shared first: it is the phase whose RSS target is absolute (state + 256 MiB), so it runs while the
    // process holds nothing that an earlier phase left behind.
    json async;
    {
      const cairn::Tree shared = SharedTree(layout);
      async["shared"] = AsyncSave(o, layout, shared, o.dir / "cairn_async_shared", "shared");
    }
    RemoveTree(o.dir / "cairn_async_shared");
    // Owned arrays: copy-on-write with the caller writing none, 10% or all of its pages during the save; then the
    // staging path (the fallback where copy-on-write is unavailable).
    async["owned"] = AsyncSave(o, layout, state, o.dir / "cairn_async_owned", "owned");
    async["owned_write10"] = AsyncSave(o, layout, state, o.dir / "cairn_async_owned", "owned, 10% written", 10);
    async["owned_write_all"] = AsyncSave(o, layout, state, o.dir / "cairn_async_owned", "owned, all written", 1);
    async["owned_staging"] =
        AsyncSave(o, layout, state, o.dir / "cairn_async_owned", "owned, staging", 0, /*copy_on_write=*/false);
    RemoveTree(o.dir / "cairn_async_owned");
    result["cairn"]["async"] = async;
  }

  std::string cold_reason = o.cold ? "" : "--no-cold";
  const fs::path floor_file = o.dir / "floor" / "state.bin";
  if (HasPhase(o, "floors")) result["floors"] = RunFloors(o, layout, !HasPhase(o, "restore"), cold_reason);

  const fs::path raw_dir = o.dir / "cairn_raw", zstd_dir = o.dir / "cairn_zstd";
  if (HasPhase(o, "sync")) {
    result["cairn"]["save_raw"] = SyncSave(o, layout, state, false, raw_dir);
    result["cairn"]["save_zstd"] = SyncSave(o, layout, state, true, zstd_dir);
  }
  if (HasPhase(o, "restore")) {
    if (!fs::exists(raw_dir)) {  // restore alone: make the checkpoint first
      cairn::Checkpointer(Handler(false)).save(raw_dir, cairn::args::StandardSave{state});
    }
    // Make sure the checkpoint is in the page cache before the warm restores.
    {
      cairn::Checkpointer ckptr(Handler(false));
      ckptr.restore(raw_dir);
    }
    // Each repetition restores with checksums verified and then without (the difference is what integrity
    // costs), alternating, so that a busy spell of this shared machine falls on both alike.
    json warm, unchecked;
    for (int r = 0; r < o.reps; ++r) {
      json v = Restore(layout, raw_dir, 1, false, o.verify && r == 0, cold_reason);
      json u = Restore(layout, raw_dir, 1, false, false, cold_reason, false);
      warm = r == 0 ? v : MergeMeasures(warm, v, layout.total_bytes);
      unchecked = r == 0 ? u : MergeMeasures(unchecked, u, layout.total_bytes);
    }
    LogMeasure("cairn restore warm", warm);
    result["cairn"]["restore_warm"] = warm;
    LogMeasure("cairn restore warm, checksums not verified", unchecked);
    result["cairn"]["restore_warm_unverified"] = unchecked;
    if (HasPhase(o, "floors")) {
      result["floors"]["read_cold"] = ColdFloorRead(layout, floor_file, cold_reason);
      // For reading the cold restore: the same read into pages never touched, as a restore's new arrays are.
      result["floors"]["read_cold_fresh_pages"] = ColdFloorRead(layout, floor_file, cold_reason, false);
    }
    json cold = Restore(layout, raw_dir, 1, true, false, cold_reason);
    if (cold.contains("best_seconds")) LogMeasure("cairn restore cold", cold);
    result["cairn"]["restore_cold"] = cold;
    for (const char* mode : {"fill", "lazy", "lazy_touch", "lazy_up_front_touch"}) {
      json m = RestoreWithArgs(layout, state, raw_dir, o.reps, mode, o.verify);
      LogMeasure(std::string("cairn restore warm, ") + mode, m);
      result["cairn"][std::string("restore_warm_") + mode] = m;
    }
    if (fs::exists(zstd_dir)) {
      json z = Restore(layout, zstd_dir, o.reps, false, o.verify, cold_reason);
      LogMeasure("cairn restore zstd warm", z);
      result["cairn"]["restore_zstd_warm"] = z;
    }
  }
  if (HasPhase(o, "codecs")) result["codecs"] = RunCodecs(layout);
  result["config"]["cold_reads"] = cold_reason.empty() ? json("page cache dropped before each cold read")
                                                       : json("unavailable: " + cold_reason);
  if (!o.keep) {
    RemoveTree(raw_dir);
    RemoveTree(zstd_dir);
  }

  const std::string text = result.dump(1);
  if (o.json_path.empty()) {
    std::cout << text << "\n";
  } else {
    std::ofstream(o.json_path) << text << "\n";
  }
  return 0;
}
