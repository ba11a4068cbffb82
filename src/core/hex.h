// Lower-case hexadecimal spelling of raw bytes (digests in signatures and in `cairn_delta/` records).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cairn {

std::string HexEncode(std::string_view bytes);
// The bytes `hex` spells (lower case, even length); nullopt for anything else.
std::optional<std::string> HexDecode(std::string_view hex);

}  // namespace cairn
