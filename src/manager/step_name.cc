#include "manager/step_name.h"

#include <cstdio>

#include "cairn/error.h"
#include "io/temporary_path.h"

namespace cairn::manager {
namespace {

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

StepNameFormat::StepNameFormat(std::optional<std::string> step_prefix, std::optional<int> step_format_fixed_length)
    : fixed_length_(step_format_fixed_length.value_or(0)) {
  if (step_prefix) {
    if (step_prefix->find('/') != std::string::npos || step_prefix->find('\0') != std::string::npos) {
      throw InvalidArgumentError("step_prefix \"" + *step_prefix + "\" must not contain '/'");
    }
    prefix_ = *step_prefix + "_";
  }
  if (fixed_length_ < 0) {
    throw InvalidArgumentError("step_format_fixed_length must be non-negative, got " + std::to_string(fixed_length_));
  }
}

std::string StepNameFormat::Build(int64_t step) const {
  if (step < 0) throw InvalidArgumentError("steps are non-negative, got " + std::to_string(step));
  std::string digits = std::to_string(step);
  if (static_cast<int>(digits.size()) < fixed_length_) {
    digits.insert(0, static_cast<size_t>(fixed_length_) - digits.size(), '0');
  }
  return prefix_ + digits;
}

std::optional<int64_t> StepNameFormat::Parse(std::string_view name) const {
  if (name.substr(0, prefix_.size()) != prefix_) return std::nullopt;
  const std::string_view digits = name.substr(prefix_.size());
  if (!AllDigits(digits)) return std::nullopt;
  if (fixed_length_ > 0) {
    // Zero-padded to exactly the length, or longer without a leading zero.
    if (digits[0] == '0' ? digits.size() != static_cast<size_t>(fixed_length_)
                         : digits.size() < static_cast<size_t>(fixed_length_)) {
      return std::nullopt;
    }
  } else if (digits[0] == '0' && digits.size() > 1) {
    return std::nullopt;
  }
  int64_t step = 0;
  for (char c : digits) {
    const int d = c - '0';
    if (step > (INT64_MAX - d) / 10) return std::nullopt;  // not a step cairn can hold
    step = step * 10 + d;
  }
  return step;
}

bool IsFinalizedStep(FileSystem& fs, const std::filesystem::path& path, const AtomicityOptions& atomicity) {
  if (io::IsTemporaryPath(path)) return false;
  const auto info = fs.Stat(path);
  if (!info || !info->is_directory) return false;
  if (atomicity.mode == AtomicityMode::kCommitFile && !atomicity.allow_legacy_atomic_rename) {
    return fs.Exists(path / io::kCommitSuccessFile);
  }
  return true;
}

bool IsUnfinishedStep(FileSystem& fs, const std::filesystem::path& root, const std::string& name,
                      const StepNameFormat& format, const AtomicityOptions& atomicity) {
  const auto path = root / name;
  if (io::IsTemporaryPath(path)) return fs.IsDirectory(path);
  // Orbax's commit-file mode counts every directory without the commit file as temporary, which would take the
  // root metadata and todelete directories too; cairn only removes the ones named like steps.
  if (atomicity.mode == AtomicityMode::kCommitFile && !atomicity.allow_legacy_atomic_rename &&
      format.Parse(name)) {
    return fs.IsDirectory(path) && !fs.Exists(path / io::kCommitSuccessFile);
  }
  return false;
}

}  // namespace cairn::manager
