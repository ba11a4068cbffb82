// The process-wide POSIX file system, which FileSystem::Default() uses for every path that is not a URL.
#pragma once

#include <memory>

#include "cairn/file_system.h"

namespace cairn::io {

std::shared_ptr<FileSystem> PosixFileSystemInstance();

}  // namespace cairn::io
