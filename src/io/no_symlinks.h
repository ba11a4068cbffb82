// cairn's policy on symbolic links inside a checkpoint: neither cairn nor Orbax ever writes one, so a link below a
// checkpoint directory is hostile or damaged input. Reads refuse it (a CorruptionError naming the link) rather
// than follow it out of the directory; deletions unlink it rather than what it points to (FileSystem::RemoveAll).
// The checkpoint directory itself, and the path above it, are the caller's and may be links.
#pragma once

#include <filesystem>

#include "cairn/file_system.h"

namespace cairn::io {

// The CorruptionError for a link found at `link` inside the checkpoint `directory`.
[[noreturn]] void RefuseSymlink(const std::filesystem::path& link, const std::filesystem::path& directory);

// Walks everything below `directory` (not following links); CorruptionError naming the first link found.
void RequireNoSymlinksBelow(FileSystem& fs, const std::filesystem::path& directory);

// The same for the components of `directory / relative` below `directory` only (one lstat per component), for a
// single file read outside a checkpointer's restore.
void RequireNoSymlinksOnPath(FileSystem& fs, const std::filesystem::path& directory,
                             const std::filesystem::path& relative);

}  // namespace cairn::io
