// FileOptions::path_permission_mode, applied to everything a save creates: a FileSystem that forwards to another
// and gives every directory it creates `mode` and every file it creates `mode` without the execute bits
// (0750 -> 0640), exactly, whatever the umask. The checkpointers and the manager wrap their FileSystem in it when
// the option is set, so no code path that creates a file can forget the mode.
#pragma once

#include <cstdint>
#include <memory>

#include "cairn/file_system.h"

namespace cairn::io {

// The mode given to files created under `mode` (a data file has no use for execute bits).
inline uint32_t FileModeFor(uint32_t mode) { return mode & 0666u; }

std::shared_ptr<FileSystem> WithPermissionMode(std::shared_ptr<FileSystem> base, uint32_t mode);

}  // namespace cairn::io
