// The one rule for names that become a single path entry inside a checkpoint (tree keys, which become parameter
// names and OCDBT keys; item names; JSON file names): a name that could not round-trip, or that could reach
// outside its directory on any platform, is refused.
#pragma once

#include <string_view>

namespace cairn {

// The rule, for error messages.
inline constexpr const char* kPlainNameRule =
    "it must be non-empty, contain no '/', '\\' or NUL, and not be '.' or '..'";

// Non-empty, not "." or "..", and no '/', '\' or NUL.
inline bool IsPlainName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find_first_of(std::string_view("/\\\0", 3)) ==
                                                           std::string_view::npos;
}

}  // namespace cairn
