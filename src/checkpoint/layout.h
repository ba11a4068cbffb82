// What a path given to the `cairn` tools (or VerifyCheckpoint / DescribeCheckpoint) is: a manager's root, a step
// (one item, or several in subdirectories), a single item, a safetensors file, or not a checkpoint at all. Decided
// from the names of the files present, never from their contents.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "cairn/file_system.h"

namespace cairn::checkpoint {

enum class PathKind {
  kMissing,     // nothing there
  kIncomplete,  // an unfinished save: `*.orbax-checkpoint-tmp`, or only that exists
  kFile,        // a regular file (perhaps a safetensors file)
  kRoot,        // a CheckpointManager root: step subdirectories
  kStep,        // `_CHECKPOINT_METADATA` and/or item subdirectories
  kItem,        // a PyTree/Standard item without `_CHECKPOINT_METADATA`
  kOther,       // a directory that holds none of the above
};

const char* PathKindName(PathKind kind);

// An item of a step: its name ("" when the step directory is the item) and what it holds.
struct ItemLayout {
  std::string name;
  std::filesystem::path dir;
  bool is_pytree = false;    // `_METADATA`, an OCDBT database, zarr arrays or a legacy aggregate
  std::string handler;       // from `item_handlers`, when the step says
};

PathKind ClassifyPath(FileSystem& fs, const std::filesystem::path& path);
// `path` normalised (no trailing slash) and classified, for tools that take a checkpoint, a step or a manager
// root: NotFoundError when nothing (or nothing like a checkpoint) is there, InvalidArgumentError for an unfinished
// save. Returns only kStep/kItem/kRoot-like kinds.
struct CheckpointPath {
  std::filesystem::path path;
  PathKind kind;
};
CheckpointPath OpenCheckpointPath(FileSystem& fs, const std::filesystem::path& path);
// Whether `dir` holds a PyTree item's files.
bool LooksLikePyTreeItem(FileSystem& fs, const std::filesystem::path& dir);
// The items of a step (or of an item directory: itself). Composite steps list their subdirectories, in the
// order of `item_handlers` when it names them.
std::vector<ItemLayout> ListItems(FileSystem& fs, const std::filesystem::path& step);
// The step subdirectories of a manager root (sorted by step number when the names are numbers), and the
// unfinished ones (`*.orbax-checkpoint-tmp*`).
struct RootLayout {
  std::vector<std::string> steps;
  std::vector<std::string> unfinished;
};
RootLayout ListSteps(FileSystem& fs, const std::filesystem::path& root);

}  // namespace cairn::checkpoint
