#include "checkpoint/layout.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "cairn/error.h"
#include "core/plain_name.h"
#include "io/path.h"
#include "io/temporary_path.h"
#include "item/layout.h"
#include "metadata/checkpoint_metadata.h"
#include "metadata/legacy_aggregate.h"
#include "metadata/tree_metadata.h"

namespace cairn::checkpoint {
namespace {

bool IsDir(FileSystem& fs, const std::filesystem::path& path) {
  try {
    return fs.IsDirectory(path);
  } catch (const Error&) {
    return false;
  }
}

std::vector<std::string> Children(FileSystem& fs, const std::filesystem::path& dir) {
  try {
    return fs.ListDir(dir);
  } catch (const Error&) {
    return {};
  }
}

// A directory that a step holds or is: `_CHECKPOINT_METADATA`, `commit_success.txt` or an item inside.
bool LooksLikeStep(FileSystem& fs, const std::filesystem::path& dir) {
  if (!IsDir(fs, dir)) return false;
  if (fs.Exists(dir / metadata::kCheckpointMetadataFile) || fs.Exists(dir / io::kCommitSuccessFile)) return true;
  if (LooksLikePyTreeItem(fs, dir)) return true;
  // An item inside (a composite step without `_CHECKPOINT_METADATA`); a child that has one is a step itself, so
  // `dir` would be a root of steps.
  for (const auto& name : Children(fs, dir)) {
    if (LooksLikePyTreeItem(fs, dir / name) && !fs.Exists(dir / name / metadata::kCheckpointMetadataFile)) return true;
  }
  return false;
}

// The trailing number of a step directory's name ("12", "step_0012"), when it has one.
std::optional<int64_t> StepNumber(const std::string& name) {
  size_t start = name.size();
  while (start > 0 && std::isdigit(static_cast<unsigned char>(name[start - 1]))) --start;
  if (start == name.size() || name.size() - start > 18) return std::nullopt;
  if (start > 0 && name[start - 1] != '_') return std::nullopt;
  return std::stoll(name.substr(start));
}

}  // namespace

const char* PathKindName(PathKind kind) {
  switch (kind) {
    case PathKind::kMissing: return "missing";
    case PathKind::kIncomplete: return "incomplete";
    case PathKind::kFile: return "file";
    case PathKind::kRoot: return "root";
    case PathKind::kStep: return "step";
    case PathKind::kItem: return "item";
    case PathKind::kOther: return "other";
  }
  return "?";
}

bool LooksLikePyTreeItem(FileSystem& fs, const std::filesystem::path& dir) {
  if (!IsDir(fs, dir)) return false;
  if (fs.Exists(dir / item::kTreeMetadataFile) || fs.Exists(dir / item::kOcdbtManifest)) return true;
  for (const auto& name : Children(fs, dir)) {
    if (item::IsOcdbtProcessDir(name)) return true;
    const auto child = dir / name;
    if (IsDir(fs, child) && (fs.Exists(child / ".zarray") || fs.Exists(child / "zarr.json"))) return true;
  }
  return false;
}

CheckpointPath OpenCheckpointPath(FileSystem& fs, const std::filesystem::path& path_in) {
  const std::filesystem::path path = io::NormalPath(path_in);
  const PathKind kind = ClassifyPath(fs, path);
  switch (kind) {
    case PathKind::kMissing:
      throw NotFoundError("No checkpoint at " + path.string() + ": no such file or directory");
    case PathKind::kIncomplete:
      throw InvalidArgumentError("Found incomplete checkpoint at " + path.string() + ": its save did not finish");
    case PathKind::kFile:
    case PathKind::kOther:
      throw NotFoundError(path.string() + " is not a checkpoint: no _CHECKPOINT_METADATA, _METADATA, OCDBT database "
                          "or zarr arrays in it, and no steps below it");
    default:
      return {path, kind};
  }
}

PathKind ClassifyPath(FileSystem& fs, const std::filesystem::path& path_in) {
  const std::filesystem::path path = io::NormalPath(path_in);
  if (io::IsTemporaryPath(path)) return PathKind::kIncomplete;
  auto info = fs.Stat(path);
  if (!info) return fs.Exists(io::TemporaryPathFor(path)) ? PathKind::kIncomplete : PathKind::kMissing;
  if (!info->is_directory) return PathKind::kFile;
  const bool step_metadata = fs.Exists(path / metadata::kCheckpointMetadataFile);
  // Where there is no rename (object stores), a step is written in place and is unfinished until its commit file
  // exists.
  if (step_metadata && !fs.HasAtomicRename(path) && !fs.Exists(path / io::kCommitSuccessFile)) {
    return PathKind::kIncomplete;
  }
  if (LooksLikePyTreeItem(fs, path)) return step_metadata ? PathKind::kStep : PathKind::kItem;
  if (LooksLikeStep(fs, path)) return PathKind::kStep;
  for (const auto& name : Children(fs, path)) {
    if (io::IsTemporaryPath(name) || LooksLikeStep(fs, path / name)) return PathKind::kRoot;
  }
  return PathKind::kOther;
}

std::vector<ItemLayout> ListItems(FileSystem& fs, const std::filesystem::path& step) {
  nlohmann::json handlers;
  try {
    if (auto m = metadata::ReadCheckpointMetadata(fs, step)) handlers = m->item_handlers;
  } catch (const Error&) {
    // A malformed `_CHECKPOINT_METADATA` is reported by whoever reads it for itself; the layout is still listed.
  }
  if (LooksLikePyTreeItem(fs, step)) {
    return {ItemLayout{"", step, true, handlers.is_string() ? handlers.get<std::string>() : ""}};
  }
  std::vector<ItemLayout> items;
  auto add = [&](const std::string& name, const std::string& handler) {
    for (const auto& item : items) {
      if (item.name == name) return;
    }
    const auto dir = step / name;
    if (!IsDir(fs, dir)) return;
    items.push_back({name, dir, LooksLikePyTreeItem(fs, dir), handler});
  };
  if (handlers.is_object()) {
    for (const auto& [name, handler] : handlers.items()) {
      if (IsPlainName(name)) {
        add(name, handler.is_string() ? handler.get<std::string>() : "");
      }
    }
  }
  for (const auto& name : Children(fs, step)) {
    if (!io::IsTemporaryPath(name)) add(name, "");
  }
  return items;
}

RootLayout ListSteps(FileSystem& fs, const std::filesystem::path& root) {
  RootLayout out;
  for (const auto& name : Children(fs, root)) {
    if (io::IsTemporaryPath(name)) {
      out.unfinished.push_back(name);
    } else if (LooksLikeStep(fs, root / name)) {
      out.steps.push_back(name);
    }
  }
  std::stable_sort(out.steps.begin(), out.steps.end(), [](const std::string& a, const std::string& b) {
    auto na = StepNumber(a), nb = StepNumber(b);
    if (na && nb && *na != *nb) return *na < *nb;
    if (na.has_value() != nb.has_value()) return na.has_value();
    return a < b;
  });
  return out;
}

}  // namespace cairn::checkpoint
