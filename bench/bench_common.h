// What the bench programs (cairn_bench, cairn_bench_mp, cairn_delta_bench) share: the command-line parser, the
// transformer's parameter shapes and how d_model is chosen for a target size, the deterministic value generator,
// and small system helpers (timing, dropping the page cache, removing a checkpoint and its temporary directory).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cairn/cairn.h"

namespace bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A command line of `--name value` options and `--name` switches, each bound to a variable of the program's
// options; anything else, a missing value or a value that does not parse ends the program with the usage text.
class CommandLine {
 public:
  CommandLine(std::string program, std::string usage, bool quiet = false)
      : program_(std::move(program)), usage_(std::move(usage)), quiet_(quiet) {}

  CommandLine& Value(const std::string& name, std::string* out) {
    values_[name] = [out](const std::string& v) { *out = v; };
    return *this;
  }
  CommandLine& Value(const std::string& name, fs::path* out) {
    values_[name] = [out](const std::string& v) { *out = v; };
    return *this;
  }
  CommandLine& Value(const std::string& name, double* out) {
    values_[name] = [out](const std::string& v) { *out = std::stod(v); };
    return *this;
  }
  CommandLine& Value(const std::string& name, int* out) {
    values_[name] = [out](const std::string& v) { *out = std::stoi(v); };
    return *this;
  }
  CommandLine& Value(const std::string& name, int64_t* out) {
    values_[name] = [out](const std::string& v) { *out = std::stoll(v); };
    return *this;
  }
  // A comma-separated list, replacing the default.
  CommandLine& List(const std::string& name, std::vector<std::string>* out) {
    values_[name] = [out](const std::string& v) {
      out->clear();
      std::stringstream ss(v);
      for (std::string item; std::getline(ss, item, ',');) out->push_back(item);
    };
    return *this;
  }
  // `--name` sets *out to `value`.
  CommandLine& Switch(const std::string& name, bool* out, bool value) {
    switches_[name] = [out, value] { *out = value; };
    return *this;
  }

  void Parse(int argc, char** argv) const {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "-h" || a == "--help") Usage("help");
      if (auto s = switches_.find(a); s != switches_.end()) {
        s->second();
        continue;
      }
      auto v = values_.find(a);
      if (v == values_.end()) Usage("unknown option " + a);
      if (i + 1 >= argc) Usage(a + " needs a value");
      try {
        v->second(argv[++i]);
      } catch (const std::exception&) {
        Usage("bad value for " + a + ": " + argv[i]);
      }
    }
  }

  [[noreturn]] void Usage(const std::string& why) const {
    if (!quiet_) std::cerr << program_ << ": " << why << "\nusage: " << usage_ << "\n";
    std::exit(2);
  }

 private:
  std::string program_, usage_;
  bool quiet_;
  std::map<std::string, std::function<void(const std::string&)>> values_;
  std::map<std::string, std::function<void()>> switches_;
};

inline double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

inline std::string Fmt(double v, int prec = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

// sync; echo 3 > /proc/sys/vm/drop_caches. Empty on success, else why not (it needs root).
inline std::string DropCaches() {
  ::sync();
  int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd < 0) return std::string("open /proc/sys/vm/drop_caches: ") + std::strerror(errno);
  std::string err;
  if (::write(fd, "3", 1) != 1) err = std::string("write /proc/sys/vm/drop_caches: ") + std::strerror(errno);
  ::close(fd);
  return err;
}

// A checkpoint directory and the temporary directory a save of it may have left.
inline void RemoveTree(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  fs::path tmp = p;
  tmp += ".orbax-checkpoint-tmp";
  fs::remove_all(tmp, ec);
}

inline uint64_t DiskUsage(const fs::path& p) {
  uint64_t total = 0;
  std::error_code ec;
  if (!fs::exists(p, ec)) return 0;
  for (auto& e : fs::recursive_directory_iterator(p, ec))
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  return total;
}

// fn(0..n-1) on `threads` threads (the machine's cores by default), each taking the next index.
inline void ParallelFor(size_t n, const std::function<void(size_t)>& fn, unsigned threads = 0) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (size_t i; (i = next.fetch_add(1)) < n;) fn(i);
    });
  for (auto& t : pool) t.join();
}

// ---------------------------------------------------------------------------------------------------------------
// Values: splitmix64 (fast, and good enough that zstd finds only the structure of the values, not of the
// generator) seeded by a hash of the array's name, so every run and every process count makes the same bytes.

inline uint64_t SplitMix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Approximately standard normal (Irwin-Hall of four 16-bit uniforms).
inline float NormalIsh(uint64_t r) {
  const uint32_t s = (r & 0xFFFF) + ((r >> 16) & 0xFFFF) + ((r >> 32) & 0xFFFF) + (r >> 48);
  return (static_cast<float>(s) - 131070.0f) * (1.0f / 37837.0f);  // sd of the sum: 65536 * sqrt(4/12)
}

// ---------------------------------------------------------------------------------------------------------------
// The model: an embedding, `layers` blocks of attention (q, k, v, o) and MLP (wi, wo) weights with two layer-norm
// scales each, and a final layer norm.

struct TransformerShape {
  int layers = 8;
  int64_t vocab = 32000;
  int mlp_ratio = 4;
};

struct ParamShape {
  std::vector<std::string> keys;  // under the group's prefix: {"layers_03", "attn", "q"}
  cairn::Shape shape;
  bool scale = false;  // a layer-norm scale (values near 1)
};

inline std::vector<ParamShape> ParamShapes(const TransformerShape& t, int64_t d) {
  std::vector<ParamShape> out;
  out.push_back({{"embed", "embedding"}, {t.vocab, d}, false});
  char layer[32];
  for (int l = 0; l < t.layers; ++l) {
    std::snprintf(layer, sizeof layer, "layers_%02d", l);
    for (const char* w : {"q", "k", "v", "o"}) out.push_back({{layer, "attn", w}, {d, d}, false});
    out.push_back({{layer, "mlp", "wi"}, {d, d * t.mlp_ratio}, false});
    out.push_back({{layer, "mlp", "wo"}, {d * t.mlp_ratio, d}, false});
    out.push_back({{layer, "ln_attn", "scale"}, {d}, true});
    out.push_back({{layer, "ln_mlp", "scale"}, {d}, true});
  }
  out.push_back({{"final_ln", "scale"}, {d}, true});
  return out;
}

// The multiple of 16 for d_model whose state size, bytes_for(d), is closest to `target` bytes.
inline int64_t ClosestDModel(size_t target, const std::function<size_t(int64_t)>& bytes_for) {
  int64_t lo = 16, hi = 16;
  while (bytes_for(hi) < target) hi *= 2;
  while (hi - lo > 16) {
    int64_t mid = (lo + hi) / 2 / 16 * 16;
    if (mid == lo) break;
    (bytes_for(mid) < target ? lo : hi) = mid;
  }
  return (target - std::min(target, bytes_for(lo)) <= bytes_for(hi) - target) ? lo : hi;
}

}  // namespace bench
