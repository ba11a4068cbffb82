// cairn convert: checkpoint -> safetensors, safetensors -> checkpoint, checkpoint -> checkpoint in another layout.
#include <atomic>
#include <iostream>
#include <thread>

#include "cairn/cairn.h"
#include "cairn/object_store.h"
#include "cairn/safetensors.h"
#include "cli.h"
#include "io/disk_usage.h"
#include "io/path.h"
#include "io/temporary_path.h"
#include "item/reader.h"
#include "metadata/python_json.h"
#include "metadata/tree_metadata.h"

namespace cairn::cli {
namespace {

constexpr const char* kHelp = R"(usage: cairn convert [options] SRC DST

Converts between a checkpoint and a safetensors file, or rewrites a checkpoint in another
layout. SRC is a checkpoint (item, step, composite step, or a manager's directory: its latest
step) or a safetensors file. DST is written atomically; it must not exist unless --force.

  --to safetensors|checkpoint   what to write (default: a safetensors file when DST ends in
                                .safetensors and SRC is a checkpoint, else a checkpoint)
  --ocdbt / --no-ocdbt          checkpoint output: OCDBT database (default) or one zarr
                                directory per parameter
  --zarr3 / --zarr2             checkpoint output: zarr3 or zarr v2 (default)
  --compression zstd|blosc-lz4|blosc-zstd|none
                                checkpoint output: zstd-compressed chunks (default; a chunk zstd does not
                                shrink by 10% is stored in raw blocks), blosc with byte shuffle, or raw
  --force                       replace DST if it exists (only once the new one is complete)
  --skip-unsupported            safetensors output: leave out string leaves instead of failing
  --flat                        safetensors input: keep tensor names flat instead of nesting at '.'
  --no-progress                 no progress bar (it is shown only when stderr is a terminal)

Tensor names in safetensors files are the parameter names: key paths joined with '.'
("params.w", "layers.0.weight"); reading splits them at '.' into nested dicts. Custom metadata
travels: a checkpoint's custom_metadata becomes __metadata__["cairn.custom_metadata"] (JSON
text), and a safetensors file's __metadata__ becomes the checkpoint's custom_metadata.
)";

constexpr const char* kCustomMetadataKey = "cairn.custom_metadata";

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Shows the bytes appearing under `watched` (the save's temporary path) against `total` while `work` runs.
template <typename Fn>
void WithWriteProgress(bool enabled, const std::filesystem::path& watched, uint64_t total, Fn&& work) {
  Progress progress("write", enabled);
  std::atomic<bool> done{false};
  std::thread poller;
  if (enabled) {
    poller = std::thread([&] {
      auto fs = FileSystem::Default();
      while (!done.load()) {
        progress.Update(std::min(io::BytesUnder(*fs, watched), total), total);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
  }
  try {
    work();
  } catch (...) {
    done = true;
    if (poller.joinable()) poller.join();
    throw;
  }
  done = true;
  if (poller.joinable()) poller.join();
  progress.Update(total, total);
  progress.Finish();
}

nlohmann::json ItemCustomMetadata(const std::filesystem::path& dir) {
  auto fs = FileSystem::Default();
  // Checked against its recorded CRC-32C, as a restore reads it.
  item::ItemReader reader(fs, dir);
  return reader.saved_tree() ? reader.saved_tree()->custom_metadata : nlohmann::json(nullptr);
}

}  // namespace

int Convert(const std::vector<std::string>& argv) {
  Args args = ParseArgs(argv, {"to", "compression"},
                        {"ocdbt", "no-ocdbt", "zarr3", "zarr2", "force", "skip-unsupported", "flat", "no-progress", "help"});
  if (args.has("help")) {
    std::cout << kHelp;
    return kOk;
  }
  if (args.positional.size() != 2) throw UsageError("convert takes SRC and DST");
  if (args.has("ocdbt") && args.has("no-ocdbt")) throw UsageError("--ocdbt and --no-ocdbt contradict each other");
  if (args.has("zarr3") && args.has("zarr2")) throw UsageError("--zarr3 and --zarr2 contradict each other");
  const std::filesystem::path dst = io::NormalPath(args.positional[1]);
  Source source = OpenSource(args.positional[0]);

  bool to_safetensors;
  if (auto to = args.value("to")) {
    if (*to != "safetensors" && *to != "checkpoint") throw UsageError("--to takes safetensors or checkpoint");
    to_safetensors = *to == "safetensors";
  } else {
    to_safetensors = !source.safetensors && EndsWith(dst.string(), ".safetensors");
  }
  const bool layout_flags = args.has("ocdbt") || args.has("no-ocdbt") || args.has("zarr3") || args.has("zarr2") ||
                            args.value("compression").has_value();
  if (to_safetensors && layout_flags) throw UsageError("--ocdbt/--no-ocdbt/--zarr3/--zarr2/--compression are for checkpoint output");
  if (args.has("flat") && !source.safetensors) throw UsageError("--flat is for safetensors input");
  if (args.has("skip-unsupported") && !to_safetensors) throw UsageError("--skip-unsupported is for safetensors output");
  auto fs = FileSystem::Default();
  if (fs->Exists(dst) && !args.has("force")) {
    throw Failure(kError, dst.string() + " already exists (--force replaces it once the new one is complete)");
  }
  const auto canonical = [](const std::filesystem::path& p) {
    return IsObjectStoreUrl(p.native()) ? p : std::filesystem::weakly_canonical(p);
  };
  if (canonical(dst) == canonical(source.path)) {
    throw UsageError("SRC and DST are the same path");
  }

  uint64_t total = 0;
  for (const auto& [name, leaf] : LoadSpecs(source)) {
    if (leaf.is_spec()) total += NumBytes(leaf.spec().dtype, leaf.spec().shape);
  }
  const bool progress = ProgressWanted(args);

  if (to_safetensors) {
    Tree tree = LoadTree(source, /*with_json_items=*/false);
    for (const auto& [name, file] : source.json_items) {
      std::cerr << "cairn convert: item " << name << " (JSON) has no place in a safetensors file; left out\n";
    }
    safetensors::SaveOptions options;
    options.skip_unsupported = args.has("skip-unsupported");
    if (source.safetensors) {
      for (const auto& [k, v] : source.custom_metadata.items()) options.metadata[k] = v.get<std::string>();
    } else if (source.custom_metadata.is_object() && !source.custom_metadata.empty()) {
      options.metadata[kCustomMetadataKey] = source.custom_metadata.dump();
    }
    safetensors::SaveResult result;
    WithWriteProgress(progress, dst.string() + ".cairn-tmp", total,
                      [&] { result = safetensors::Save(dst, tree, options); });
    for (const auto& s : result.skipped) std::cerr << "cairn convert: left out " << s << "\n";
    std::cerr << "cairn convert: wrote " << dst.string() << " (" << HumanBytes(result.bytes_written) << ")\n";
    return kOk;
  }

  PyTreeCheckpointHandlerOptions options;
  options.use_ocdbt = !args.has("no-ocdbt");
  options.use_zarr3 = args.has("zarr3");
  if (auto c = args.value("compression")) {
    if (*c != "zstd" && *c != "none" && *c != "blosc-lz4" && *c != "blosc-zstd") {
      throw UsageError("--compression takes zstd, blosc-lz4, blosc-zstd or none");
    }
    options.use_compression = *c != "none";
    if (options.use_compression) options.compressor = *c;
  }
  SaveOptions save_options;
  save_options.force = args.has("force");
  Tree tree;
  if (source.safetensors) {
    safetensors::LoadOptions load;
    load.nest = !args.has("flat");
    auto loaded = safetensors::Load(source.path, load);
    tree = std::move(loaded.tree);
    nlohmann::json custom = nlohmann::json::object();
    if (auto it = loaded.metadata.find(kCustomMetadataKey); it != loaded.metadata.end()) {
      try {
        auto parsed = metadata::ParseJson(it->second, "__metadata__[\"cairn.custom_metadata\"]");
        if (parsed.is_object()) custom = parsed;
      } catch (const Error&) {
      }
    }
    for (const auto& [k, v] : loaded.metadata) {
      if (k != kCustomMetadataKey && !custom.contains(k)) custom[k] = v;
    }
    save_options.custom_metadata = custom;
  } else {
    tree = LoadTree(source);
    if (source.custom_metadata.is_object()) save_options.custom_metadata = source.custom_metadata;
  }
  const auto watched = io::TemporaryPathFor(dst);
  if (source.composite) {
    std::map<std::string, std::unique_ptr<CheckpointHandler>> handlers;
    args::Composite composite;
    for (const auto& [name, item] : tree.items()) {
      if (auto it = source.json_items.find(name); it != source.json_items.end()) {
        handlers[name] = std::make_unique<JsonCheckpointHandler>(it->second);
        composite.add(name, args::JsonSave(item.ToJson()));
      } else {
        handlers[name] = std::make_unique<PyTreeCheckpointHandler>(options);
        composite.add(name, args::PyTreeSave(item, {}, std::nullopt, ItemCustomMetadata(source.path / name)));
      }
    }
    Checkpointer ckptr(std::make_unique<CompositeCheckpointHandler>(std::move(handlers)));
    WithWriteProgress(progress, watched, total, [&] { ckptr.save(dst, composite, save_options); });
  } else if (source.safetensors || source.handler.find("StandardCheckpointHandler") != std::string::npos) {
    Checkpointer ckptr(std::make_unique<StandardCheckpointHandler>(options));
    WithWriteProgress(progress, watched, total, [&] {
      ckptr.save(dst, args::StandardSave(tree, {}, source.safetensors ? nlohmann::json(nullptr) : source.item_custom_metadata),
                 save_options);
    });
  } else {
    Checkpointer ckptr(std::make_unique<PyTreeCheckpointHandler>(options));
    WithWriteProgress(progress, watched, total, [&] {
      ckptr.save(dst, args::PyTreeSave(tree, {}, std::nullopt, source.item_custom_metadata), save_options);
    });
  }
  std::cerr << "cairn convert: wrote " << dst.string() << " (" << (options.use_ocdbt ? "OCDBT" : "zarr directories")
            << ", " << (options.use_zarr3 ? "zarr3" : "zarr v2") << ", "
            << (options.use_compression ? options.compressor : "uncompressed") << ")\n";
  return kOk;
}

}  // namespace cairn::cli
