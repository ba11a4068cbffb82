// The `cairn` command: shared pieces (exit codes, argument parsing, checkpoint and safetensors sources, progress
// bar, formatting). One file per command: info.cc, verify.cc, diff.cc, cat.cc, convert.cc.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cairn/tree.h"

namespace cairn::cli {

// Exit codes (docs/cli.md).
enum ExitCode : int {
  kOk = 0,           // all is well (verify: no problem; diff: no difference)
  kFound = 1,        // verify found problems, diff found differences
  kUsage = 2,        // bad command line
  kNotFound = 3,     // no such file, directory, checkpoint or parameter
  kCorrupt = 4,      // a file does not decode or fails its checksum
  kIncomplete = 5,   // an unfinished save (`*.orbax-checkpoint-tmp`)
  kError = 6,        // anything else: I/O errors, unsupported content, destination exists, ...
};

// A failure the command reports with its own exit code.
class Failure : public std::runtime_error {
 public:
  Failure(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};
inline Failure UsageError(const std::string& message) { return Failure(kUsage, message); }

// Options and positional arguments. Flags are `--name` or `--name=value` / `--name value` (for the names listed
// as taking a value); `--` ends the flags.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // flags with values
  std::map<std::string, bool> flags;           // flags without
  bool has(const std::string& name) const { return flags.count(name) > 0; }
  std::optional<std::string> value(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
};
// `takes_value` and `booleans` are the only flags accepted; anything else is a usage error.
Args ParseArgs(const std::vector<std::string>& argv, const std::vector<std::string>& takes_value,
               const std::vector<std::string>& booleans);

// What a command reads: a checkpoint (item, step, composite step; a manager root means its latest step) or a
// safetensors file.
struct Source {
  std::filesystem::path path;      // the step or item directory, or the file
  bool safetensors = false;
  bool composite = false;          // a step with named items: the tree's first level is the item names
  nlohmann::json custom_metadata;  // the step's custom_metadata, or safetensors __metadata__ as an object
  nlohmann::json item_custom_metadata;  // _METADATA's custom_metadata (single-item checkpoints)
  std::string handler;             // the single item's handler type string, when recorded
  std::map<std::string, std::string> json_items;  // composite: item name -> its JSON file name (non-array items)
};
// Resolves `path` (with exit codes for missing, unfinished and non-checkpoint paths). A root resolves to its latest
// step, said on stderr.
Source OpenSource(const std::filesystem::path& path);
// The whole tree (arrays as saved; json items as their JSON when `with_json_items`).
Tree LoadTree(const Source& source, bool with_json_items = true);
// Parameter names and their specs (no array bytes): the flattened tree with '.'-joined names.
std::vector<std::pair<std::string, Tree>> LoadSpecs(const Source& source);
// One array: the whole of it, or the box [origin, origin + shape) (only the chunks it overlaps are read).
Array LoadArray(const Source& source, const std::string& param, const std::optional<Box>& box);

// Progress on stderr: "[#####.....]  52%  1.2 GiB / 2.3 GiB  310 MiB/s", redrawn at most ~10 times a second, only
// when stderr is a terminal (or CAIRN_PROGRESS=1) and --no-progress was not given.
class Progress {
 public:
  Progress(std::string label, bool enabled);
  ~Progress();
  void Update(uint64_t done, uint64_t total);
  void Finish();

 private:
  void Draw(bool final);
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  uint64_t done_ = 0, total_ = 0;
  std::chrono::steady_clock::time_point start_, last_;
};
bool ProgressWanted(const Args& args);

std::string HumanBytes(uint64_t bytes);  // "1.5 MiB"
std::string ShapeText(const nlohmann::json& shape);  // "(2, 3)"

int Info(const std::vector<std::string>& argv);
int Verify(const std::vector<std::string>& argv);
int Diff(const std::vector<std::string>& argv);
int Cat(const std::vector<std::string>& argv);
int Convert(const std::vector<std::string>& argv);

}  // namespace cairn::cli
