#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cairn/cairn.h"
#include "cairn/safetensors.h"
#include "checkpoint/layout.h"
#include "cli.h"
#include "io/path.h"
#include "item/reader.h"
#include "metadata/checksums.h"
#include "metadata/checkpoint_metadata.h"
#include "metadata/python_json.h"
#include "metadata/tree_metadata.h"

namespace cairn::cli {
namespace {

std::shared_ptr<FileSystem> Fs() { return FileSystem::Default(); }

std::string Join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : name.empty() ? prefix : prefix + "." + name;
}

// The pytree items of a source: (name, directory); name "" for a single item.
std::vector<std::pair<std::string, std::filesystem::path>> PyTreeItems(const Source& source) {
  std::vector<std::pair<std::string, std::filesystem::path>> out;
  for (const auto& item : checkpoint::ListItems(*Fs(), source.path)) {
    if (!item.is_pytree) continue;
    out.emplace_back(source.composite ? item.name : "", item.dir);
  }
  return out;
}

// A checkpointer for an item directory inside a source that OpenSource has already vetted. The commit file is the
// step's, not the item's: on an object store (always the commit-file protocol) the item itself has none.
Checkpointer ItemCheckpointer() {
  CheckpointerOptions options;
  options.atomicity_options = {AtomicityMode::kCommitFile, /*allow_legacy_atomic_rename=*/true};
  return Checkpointer(std::make_unique<PyTreeCheckpointHandler>(), options);
}

Tree RestoreItem(const std::filesystem::path& dir, const CheckpointArgs* args) {
  Checkpointer ckptr = ItemCheckpointer();
  return args ? ckptr.restore(dir, *args) : ckptr.restore(dir);
}

// The box of `array` (a whole array in memory).
Array CutBox(const Array& array, const Box& box) {
  Array out = Array::Zeros(array.dtype(), box.shape);
  const size_t rank = box.shape.size();
  const size_t item = ItemSize(array.dtype());
  if (NumElements(box.shape) == 0) return out;
  std::vector<int64_t> index(rank, 0);
  const auto* src = array.bytes().data();
  auto* dst = out.mutable_bytes().data();
  int64_t n = NumElements(box.shape);
  for (int64_t k = 0; k < n; ++k) {
    int64_t offset = 0;
    for (size_t d = 0; d < rank; ++d) offset = offset * array.shape()[d] + box.origin[d] + index[d];
    std::memcpy(dst + static_cast<size_t>(k) * item, src + static_cast<size_t>(offset) * item, item);
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < box.shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

}  // namespace

Args ParseArgs(const std::vector<std::string>& argv, const std::vector<std::string>& takes_value,
               const std::vector<std::string>& booleans) {
  auto contains = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  Args args;
  bool flags_done = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (flags_done || a.size() < 2 || a.rfind("--", 0) != 0) {
      if (!flags_done && a.size() > 1 && a[0] == '-' && !std::isdigit(static_cast<unsigned char>(a[1]))) {
        throw UsageError("unknown option " + a);
      }
      args.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    std::string name = a.substr(2), value;
    const auto eq = name.find('=');
    const bool has_value = eq != std::string::npos;
    if (has_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (contains(takes_value, name)) {
      if (!has_value) {
        if (i + 1 >= argv.size()) throw UsageError("option --" + name + " needs a value");
        value = argv[++i];
      }
      args.values[name] = value;
    } else if (contains(booleans, name)) {
      if (has_value) throw UsageError("option --" + name + " takes no value");
      args.flags[name] = true;
    } else {
      throw UsageError("unknown option --" + name);
    }
  }
  return args;
}

Source OpenSource(const std::filesystem::path& path_in) {
  auto fs = Fs();
  const std::filesystem::path path = io::NormalPath(path_in);
  Source source;
  source.path = path;
  auto kind = checkpoint::ClassifyPath(*fs, path);
  switch (kind) {
    case checkpoint::PathKind::kMissing:
      throw Failure(kNotFound, path.string() + ": no such file or directory");
    case checkpoint::PathKind::kIncomplete:
      throw Failure(kIncomplete, "Found incomplete checkpoint at " + path.string() +
                                     ": its save did not finish (an *.orbax-checkpoint-tmp directory, or no commit_success.txt)");
    case checkpoint::PathKind::kOther:
      throw Failure(kNotFound, path.string() + " is not a checkpoint: no _CHECKPOINT_METADATA, _METADATA, OCDBT "
                                               "database or zarr arrays in it, and no steps below it");
    case checkpoint::PathKind::kFile: {
      source.safetensors = true;
      auto header = safetensors::ReadHeader(path, fs);
      source.custom_metadata = nlohmann::json::object();
      for (const auto& [k, v] : header.metadata) source.custom_metadata[k] = v;
      return source;
    }
    case checkpoint::PathKind::kRoot: {
      auto layout = checkpoint::ListSteps(*fs, path);
      if (layout.steps.empty()) throw Failure(kNotFound, path.string() + " holds no finished step");
      source.path = path / layout.steps.back();
      std::cerr << "cairn: " << path.string() << " is a checkpoint manager's directory; using its latest step, "
                << source.path.string() << "\n";
      break;
    }
    default:
      break;
  }
  if (auto m = metadata::ReadCheckpointMetadata(*fs, source.path)) {
    source.custom_metadata = m->custom_metadata;
    if (m->item_handlers.is_string()) source.handler = m->item_handlers.get<std::string>();
  }
  auto items = checkpoint::ListItems(*fs, source.path);
  if (items.size() == 1 && items[0].name == "default" && items[0].is_pytree) {
    // A CheckpointManager step with a single unnamed item.
    source.path = items[0].dir;
    source.handler = items[0].handler;
    items = checkpoint::ListItems(*fs, source.path);
  }
  source.composite = !(items.size() == 1 && items[0].name.empty());
  if (!source.composite) {
    // Checked against its recorded CRC-32C, as a restore reads it.
    item::ItemReader reader(fs, source.path);
    if (reader.saved_tree()) source.item_custom_metadata = reader.saved_tree()->custom_metadata;
  }
  for (const auto& item : items) {
    if (item.is_pytree) continue;
    std::vector<std::string> files;
    for (const auto& name : fs->ListDir(item.dir)) {
      if (!fs->IsDirectory(item.dir / name) && !metadata::IsBookkeepingFileName(name)) files.push_back(name);
    }
    if (item.handler.find("JsonCheckpointHandler") != std::string::npos && files.size() == 1) {
      source.json_items[item.name] = files[0];
    } else {
      std::cerr << "cairn: item " << item.name << " of " << source.path.string() << " ("
                << (item.handler.empty() ? "unknown handler" : item.handler) << ") is left out\n";
    }
  }
  return source;
}

Tree LoadTree(const Source& source, bool with_json_items) {
  if (source.safetensors) return safetensors::Load(source.path).tree;
  auto items = PyTreeItems(source);
  if (!source.composite) return RestoreItem(items.at(0).second, nullptr);
  std::vector<Tree::Item> out;
  for (const auto& [name, dir] : items) out.emplace_back(name, RestoreItem(dir, nullptr));
  if (with_json_items) {
    for (const auto& [name, file] : source.json_items) {
      auto path = source.path / name / file;
      auto text = item::ReadJsonItemFile(*Fs(), path);  // checked against its cairn_<file>.crc32c
      if (!text) throw NotFoundError("JSON item file " + path.string() + " does not exist");
      out.emplace_back(name, Tree::FromJson(metadata::ParseJson(*text, path.string())));
    }
  }
  return Tree::Dict(std::move(out));
}

std::vector<std::pair<std::string, Tree>> LoadSpecs(const Source& source) {
  std::vector<std::pair<std::string, Tree>> out;
  if (source.safetensors) {
    for (const auto& t : safetensors::ReadHeader(source.path).tensors) out.emplace_back(t.name, Tree(ArraySpec{t.dtype, t.shape}));
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return out;
  }
  for (const auto& [item, dir] : PyTreeItems(source)) {
    PyTreeCheckpointHandler handler;
    Checkpointer ckptr = ItemCheckpointer();
    Tree meta = ckptr.metadata(dir).item_metadata;
    for (const auto& [path, leaf] : meta.Flatten()) out.emplace_back(Join(item, ParamName(path)), leaf);
  }
  return out;
}

Array LoadArray(const Source& source, const std::string& param, const std::optional<Box>& box) {
  if (source.safetensors) {
    auto header = safetensors::ReadHeader(source.path);
    for (const auto& t : header.tensors) {
      if (t.name != param) continue;
      Array array = Array::Allocate(t.dtype, t.shape);
      if (array.num_bytes() > 0) {
        Fs()->OpenForRead(source.path)->ReadAt(header.data_offset() + t.begin, array.num_bytes(),
                                               reinterpret_cast<char*>(array.mutable_bytes().data()));
      }
      return box ? CutBox(array, *box) : array;
    }
    throw Failure(kNotFound, "no tensor " + param + " in " + source.path.string());
  }
  for (const auto& [item, dir] : PyTreeItems(source)) {
    std::string rest;
    if (item.empty()) {
      rest = param;
    } else if (param.rfind(item + ".", 0) == 0) {
      rest = param.substr(item.size() + 1);
    } else {
      continue;
    }
    Checkpointer ckptr = ItemCheckpointer();
    Tree meta = ckptr.metadata(dir).item_metadata;
    for (const auto& [path, leaf] : meta.Flatten()) {
      if (ParamName(path) != rest) continue;
      if (!leaf.is_spec()) {
        throw Failure(kError, param + " is not an array (" + leaf.ToString() + ")");
      }
      const ArraySpec spec = leaf.spec();
      ShardedArraySpec target{spec.dtype, spec.shape, {box ? *box : Box::All(spec.shape)}};
      Tree restored = ckptr.restore(dir, args::PyTreeRestore(Tree::FromFlat({{path, Tree(target)}}), {}, true));
      for (const auto& [p, value] : restored.Flatten()) {
        if (ParamName(p) == rest && value.is_sharded_array()) return value.sharded_array().shards().at(0).data;
      }
      throw Failure(kError, "restoring " + param + " gave no array");
    }
  }
  throw Failure(kNotFound, "no parameter " + param + " in " + source.path.string() + " (cairn info lists them)");
}

bool ProgressWanted(const Args& args) {
  if (args.has("no-progress")) return false;
  const char* force = std::getenv("CAIRN_PROGRESS");
  if (force && std::string(force) == "1") return true;
  return isatty(STDERR_FILENO) == 1;
}

Progress::Progress(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled), start_(std::chrono::steady_clock::now()), last_() {}

Progress::~Progress() {
  if (drawn_) std::cerr << "\n";
}

void Progress::Update(uint64_t done, uint64_t total) {
  done_ = done;
  total_ = total;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  Draw(false);
}

void Progress::Finish() {
  if (!enabled_) return;
  Draw(true);
  std::cerr << "\n";
  drawn_ = false;
  enabled_ = false;
}

void Progress::Draw(bool final) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double fraction = total_ ? std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_)) : (final ? 1.0 : 0.0);
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "]";
  char line[256];
  std::snprintf(line, sizeof line, "\r%s %s %3d%%  %s / %s  %s/s ", label_.c_str(), bar.c_str(),
                static_cast<int>(fraction * 100), HumanBytes(done_).c_str(), HumanBytes(total_).c_str(),
                HumanBytes(seconds > 0 ? static_cast<uint64_t>(static_cast<double>(done_) / seconds) : 0).c_str());
  std::cerr << line << std::flush;
  drawn_ = true;
}

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

std::string ShapeText(const nlohmann::json& shape) {
  if (!shape.is_array()) return "?";
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += shape[i].dump();
  }
  if (shape.size() == 1) out += ",";
  return out + ")";
}

}  // namespace cairn::cli
