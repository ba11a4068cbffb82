// cairn_delta_bench: delta checkpoints (issue 18) against full saves, for `make bench` (bench/run.py runs it and
// prints its rows).
//
// Two runs, each saving --steps synchronous, durable steps with a StandardCheckpointHandler (zarr v2 in OCDBT):
//   finetune     a frozen base (--base-mib, in arrays of 64 MiB) plus an adapter (--adapter-mib) that changes every
//                step. Four ways: `full` (today's save), `delta` (each step a delta of the one before; unchanged
//                chunks found by content, SHA-256 of their bytes before encoding), `delta_frozen` (the same, with the
//                base declared frozen), `delta_shared` (the base handed over as Array::FromShared buffers, the same
//                ones every step: the checkpointer knows them unchanged without a declaration).
//   fullchange   every byte changes every step: `full` against `delta` (which finds nothing to share and must not
//                be slower).
// For each step: seconds to save, bytes the step added to the disk (files whose inode no earlier step holds), and
// at the end the disk use of all the steps kept (each inode once). Every step is then restored and compared with
// what was saved (all of them, after the earlier steps they shared with were deleted, for the delta runs).
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_common.h"
#include "cairn/cairn.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using bench::Clock;
using bench::Seconds;
using bench::SplitMix;

namespace {

struct Options {
  fs::path dir;
  fs::path json_path;
  double base_mib = 2048;
  double adapter_mib = 20;
  int steps = 10;
  int fullchange_steps = 3;
};

Options Parse(int argc, char** argv) {
  Options o;
  const bench::CommandLine cl =
      bench::CommandLine("cairn_delta_bench",
                         "cairn_delta_bench --dir DIR [--json FILE] [--base-mib 2048] [--adapter-mib 20] [--steps 10]\n"
                         "                         [--fullchange-steps 3]")
          .Value("--dir", &o.dir)
          .Value("--json", &o.json_path)
          .Value("--base-mib", &o.base_mib)
          .Value("--adapter-mib", &o.adapter_mib)
          .Value("--steps", &o.steps)
          .Value("--fullchange-steps", &o.fullchange_steps);
  cl.Parse(argc, argv);
  if (o.dir.empty()) cl.Usage("--dir is required");
  if (o.steps < 2 || o.fullchange_steps < 2) cl.Usage("--steps and --fullchange-steps must be at least 2");
  return o;
}

// Arrays of float32 noise totalling about `mib`, at most 64 MiB each, named <prefix>_<i>.
std::vector<std::pair<std::string, cairn::Array>> MakeArrays(const std::string& prefix, double mib, uint64_t seed) {
  const uint64_t total = static_cast<uint64_t>(mib * 1024 * 1024) / 4 * 4;
  const uint64_t per = uint64_t{64} << 20;
  std::vector<std::pair<std::string, cairn::Array>> out;
  for (uint64_t done = 0, i = 0; done < total; ++i) {
    const uint64_t bytes = std::min(per, total - done);
    cairn::Array a = cairn::Array::Allocate(cairn::DType::kUInt32, {static_cast<int64_t>(bytes / 4)});
    uint64_t s = seed * 1000003 + i;
    for (auto& v : a.mutable_data<uint32_t>()) v = static_cast<uint32_t>(SplitMix(s));
    out.emplace_back(prefix + "_" + std::to_string(i), std::move(a));
    done += bytes;
  }
  return out;
}

// Every element of the arrays moved by `by` (other bytes throughout).
void Shift(std::vector<std::pair<std::string, cairn::Array>>& arrays, uint32_t by) {
  for (auto& [name, a] : arrays) {
    cairn::Array copy = cairn::Array::Allocate(a.dtype(), a.shape());
    auto src = a.data<uint32_t>();
    auto dst = copy.mutable_data<uint32_t>();
    for (size_t i = 0; i < src.size(); ++i) dst[i] = src[i] + by;
    a = std::move(copy);
  }
}

cairn::Tree ToTree(const std::vector<std::pair<std::string, cairn::Array>>& base,
                   const std::vector<std::pair<std::string, cairn::Array>>& adapter) {
  std::vector<std::pair<std::string, cairn::Tree>> b, a;
  for (const auto& [name, array] : base) b.emplace_back(name, cairn::Tree(array));
  for (const auto& [name, array] : adapter) a.emplace_back(name, cairn::Tree(array));
  return cairn::Tree::Dict({{"base", cairn::Tree::Dict(std::move(b))}, {"adapter", cairn::Tree::Dict(std::move(a))}});
}

using Inodes = std::set<std::pair<dev_t, ino_t>>;

// Bytes of the regular files under `dir` whose inode is not in `seen` (adding them to it).
uint64_t NewBytes(const fs::path& dir, Inodes& seen) {
  uint64_t bytes = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    struct stat st;
    if (!entry.is_regular_file() || ::stat(entry.path().c_str(), &st) != 0) continue;
    if (seen.insert({st.st_dev, st.st_ino}).second) bytes += static_cast<uint64_t>(st.st_size);
  }
  return bytes;
}

enum class Mode { kFull, kDelta, kDeltaFrozen, kDeltaShared };
const char* ModeName(Mode m) {
  return m == Mode::kFull ? "full" : m == Mode::kDelta ? "delta" : m == Mode::kDeltaFrozen ? "delta_frozen"
                                                                                          : "delta_shared";
}

// The same bytes as immutable Array::FromShared buffers (each keeps its owned array alive).
void ToShared(std::vector<std::pair<std::string, cairn::Array>>& arrays) {
  for (auto& [name, a] : arrays) {
    auto owner = std::make_shared<const cairn::Array>(a);
    a = cairn::Array::FromShared(std::shared_ptr<const void>(owner, owner->bytes().data()), a.dtype(), a.shape());
  }
}

// One run: `steps` saves of base + adapter, the adapter (and with `change_base` the base too) shifted every step.
json Run(const Options& o, const std::string& run, Mode mode, double base_mib, int steps, bool change_base) {
  const fs::path dir = o.dir / (run + "_" + ModeName(mode));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto base = MakeArrays("w", base_mib, 1);
  auto adapter = MakeArrays("lora", o.adapter_mib, 2);
  if (mode == Mode::kDeltaShared) ToShared(base);
  cairn::Checkpointer ckptr(std::make_unique<cairn::StandardCheckpointHandler>());
  cairn::SaveArgsMap frozen;
  if (mode == Mode::kDeltaFrozen) {
    for (const auto& [name, array] : base) frozen["base." + name] = cairn::SaveArgs{.frozen = true};
  }
  json out;
  out["mode"] = ModeName(mode);
  Inodes seen;
  std::vector<double> seconds;
  std::vector<uint64_t> written;
  std::vector<cairn::Tree> expected;
  for (int step = 0; step < steps; ++step) {
    if (step > 0) {
      Shift(adapter, 1);
      if (change_base) Shift(base, 1);
    }
    const cairn::Tree state = ToTree(base, adapter);
    cairn::SaveOptions save_options;
    if (mode != Mode::kFull) {
      save_options.record_delta_hashes = true;
      if (step > 0) save_options.delta_base = dir / std::to_string(step - 1);
      save_options.delta_max_changed_fraction = 0.5;
    }
    const auto t0 = Clock::now();
    ckptr.save(dir / std::to_string(step), cairn::args::StandardSave{state, frozen}, save_options);
    seconds.push_back(Seconds(t0, Clock::now()));
    written.push_back(NewBytes(dir / std::to_string(step), seen));
    expected.push_back(state);
    if (expected.size() > 2) expected[expected.size() - 3] = cairn::Tree::None();  // keep memory bounded
  }
  uint64_t kept = 0;
  {
    Inodes all;
    kept = NewBytes(dir, all);
  }
  // Restores: the last two steps against what was saved; every step must at least restore. Delta runs restore after
  // the steps they shared with are deleted.
  bool exact = true;
  for (int step = 0; step < steps; ++step) {
    if (mode != Mode::kFull && step > 0) fs::remove_all(dir / std::to_string(step - 1));
    cairn::Tree restored = ckptr.restore(dir / std::to_string(step));
    if (!expected[step].is_none() && !(restored == expected[step])) exact = false;
  }
  out["seconds_per_step"] = seconds;
  out["bytes_written_per_step"] = written;
  out["kept_bytes"] = kept;
  out["restored_exactly"] = exact;
  fs::remove_all(dir);
  std::cerr << "delta bench: " << run << " " << ModeName(mode) << ": steps " << steps << ", kept "
            << kept / (1 << 20) << " MiB, restored " << (exact ? "exactly" : "WRONG") << "\n";
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  fs::create_directories(o.dir);
  json result;
  result["config"] = {{"base_mib", o.base_mib}, {"adapter_mib", o.adapter_mib}, {"steps", o.steps},
                      {"fullchange_steps", o.fullchange_steps}};
  for (Mode mode : {Mode::kFull, Mode::kDelta, Mode::kDeltaFrozen, Mode::kDeltaShared}) {
    result["finetune"].push_back(Run(o, "finetune", mode, o.base_mib, o.steps, /*change_base=*/false));
  }
  for (Mode mode : {Mode::kFull, Mode::kDelta}) {
    result["fullchange"].push_back(Run(o, "fullchange", mode, o.base_mib, o.fullchange_steps, /*change_base=*/true));
  }
  if (!o.json_path.empty()) {
    std::ofstream(o.json_path) << result.dump(1);
  } else {
    std::cout << result.dump(1) << "\n";
  }
  return 0;
}
