// CRC-32C (Castagnoli), as OCDBT and zarr3's crc32c codec use it.
#pragma once

#include <cstdint>
#include <string_view>

namespace cairn {

// Extends `crc` (the CRC of earlier bytes, 0 to start) over `data`.
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

}  // namespace cairn
