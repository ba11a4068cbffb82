// Orbax's temporary-directory naming and the pieces of an atomic commit.
#pragma once

#include <filesystem>
#include <string_view>

#include "cairn/file_system.h"

namespace cairn::io {

// `<final>.orbax-checkpoint-tmp`: what Orbax has written since July 2025. Older Orbax appended
// `-<counter>` or `-<timestamp>`; IsTemporaryPath recognises all three.
inline constexpr std::string_view kTmpSuffix = ".orbax-checkpoint-tmp";
inline constexpr const char* kCommitSuccessFile = "commit_success.txt";

std::filesystem::path TemporaryPathFor(const std::filesystem::path& final_path);
bool IsTemporaryPath(const std::filesystem::path& path);

// Fsyncs `directory` and every directory below it, so that every entry created in them is durable. Files are
// fsynced as they are written; this is the once-per-directory half, run before the commit rename.
void SyncDirectoryTree(FileSystem& fs, const std::filesystem::path& directory);

// Replaces the file at `path` with `data` so that a reader sees the old file or the new one, never a torn one:
// written and fsynced at `temp`, renamed over `path`, the directory fsynced; on an object store, where a single
// put is already all-or-nothing and a rename is a copy, just one put.
void WriteFileAtomically(FileSystem& fs, const std::filesystem::path& path, const std::filesystem::path& temp,
                         std::string_view data);

}  // namespace cairn::io
