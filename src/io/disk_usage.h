// How many bytes the files below a path hold, for progress bars (`cairn verify`, `cairn convert`).
#pragma once

#include <cstdint>
#include <filesystem>

#include "cairn/file_system.h"

namespace cairn::io {

// The sizes of the regular files at or below `path`, added up; 0 for what cannot be read (a directory that
// changes while it is walked).
uint64_t BytesUnder(FileSystem& fs, const std::filesystem::path& path);

}  // namespace cairn::io
