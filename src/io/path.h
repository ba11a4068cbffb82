// Path spelling shared by every entry point that takes a directory: a local path or an s3:// / gs:// URL.
#pragma once

#include <filesystem>

namespace cairn::io {

// lexically_normal() without a trailing '/', for local paths; for URLs the same normalisation of the key, keeping
// the "scheme://" that lexically_normal would fold to "scheme:/". Not made absolute.
std::filesystem::path NormalPath(const std::filesystem::path& path);

}  // namespace cairn::io
