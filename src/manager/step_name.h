// Orbax's standard step naming (`_src/path/step.py`): `<step>`, `<prefix>_<step>`, zero-padded to a fixed length.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/file_system.h"
#include "cairn/options.h"

namespace cairn::manager {

class StepNameFormat {
 public:
  // InvalidArgumentError for a prefix with '/' or NUL, or a negative length.
  StepNameFormat(std::optional<std::string> step_prefix = std::nullopt,
                 std::optional<int> step_format_fixed_length = std::nullopt);

  // `23`, `0023`, `step_23`, `step_0023`.
  std::string Build(int64_t step) const;
  // The step a directory name stands for, or nullopt. Orbax's regex `^(<prefix>_)?(0|[1-9]\d*)$`, or with a fixed
  // length n `^(<prefix>_)?(0\d{n-1}|[1-9]\d{n-1}\d*)$`; so each step has exactly one name. Temporary names never
  // match.
  std::optional<int64_t> Parse(std::string_view name) const;

 private:
  std::string prefix_;  // with its '_', or empty
  int fixed_length_;    // 0: none
};

// Whether `path` holds a finished checkpoint: for atomic rename, a directory without the temporary suffix; with a
// commit file, one that holds `commit_success.txt` (or, with allow_legacy_atomic_rename, any such directory).
bool IsFinalizedStep(FileSystem& fs, const std::filesystem::path& path, const AtomicityOptions& atomicity);

// Whether `name` under a checkpoint root is an unfinished save that cleanup_tmp_directories removes:
// `*.orbax-checkpoint-tmp[-<n>]`, and with a commit file (unless legacy rename is allowed) a step directory without
// `commit_success.txt`.
bool IsUnfinishedStep(FileSystem& fs, const std::filesystem::path& root, const std::string& name,
                      const StepNameFormat& format, const AtomicityOptions& atomicity);

}  // namespace cairn::manager
