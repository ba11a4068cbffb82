// Random identifiers: database uuids and data file names (`d/<32 lowercase hex>`), 128 random bits each so that
// processes writing into the same directory never collide.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace cairn::kvstore::ocdbt {

std::array<uint8_t, 16> RandomId128();
std::string ToLowerHex(const std::array<uint8_t, 16>& id);

}  // namespace cairn::kvstore::ocdbt
