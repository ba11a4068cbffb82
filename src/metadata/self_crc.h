// cairn's own JSON files (`cairn_checksums/`, `cairn_delta/`) carry a CRC-32C of themselves, so that a damaged
// record is told from a damaged file it describes: the member "crc32c" holds the CRC-32C of the compact dump of
// the document without that member (nlohmann::json keeps members sorted, so the dump is canonical).
#pragma once

#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

namespace cairn::metadata {

inline constexpr const char* kSelfCrcMember = "crc32c";

// Adds the member to `doc` (an object without it).
void AddSelfCrc(nlohmann::json& doc);

// Removes the member from `doc` and returns whether it was there, a 32-bit number, and equal to the CRC-32C of
// what remains. `present` (optional) tells a missing or malformed member from a wrong one, for the message.
bool TakeSelfCrc(nlohmann::json& doc, bool* present = nullptr);

}  // namespace cairn::metadata
