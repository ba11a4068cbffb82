// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the checksum OCDBT puts at the end of every manifest,
// version-tree node and B+tree node, and that zarr3's crc32c codec uses.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace cairn {

// Extends `crc` (the CRC of earlier bytes, 0 for none) over `data`, so
// Crc32c(b, Crc32c(a)) == Crc32c(a + b). Uses the SSE4.2 crc32 instruction when the CPU has it.
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

// The CRC of a + b from crc_a = Crc32c(a), crc_b = Crc32c(b) and b's length, without the bytes: lets pieces of
// one value be checksummed in parallel, each while it is still in cache.
uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t length_b);
// Values longer than this also get a CRC-32C per block of this many bytes (the last one shorter), so that a read
// of a byte range of the value can check the blocks it reads (docs/format.md, "Integrity").
inline constexpr uint64_t kCrc32cBlockBytes = uint64_t{64} << 10;
// The CRC-32C of `value` and, when it is longer than one block, of each of its blocks appended to `blocks`
// (computed once: the whole CRC is joined from the blocks').
uint32_t Crc32cWithBlocks(std::string_view value, std::vector<uint32_t>* blocks);

namespace crc32c_internal {
// The two implementations behind Crc32c, exposed so tests can check that they agree.
uint32_t Software(std::string_view data, uint32_t crc);
bool HardwareAvailable();
uint32_t Hardware(std::string_view data, uint32_t crc);  // only call when HardwareAvailable()
uint32_t MultiplyModP(uint32_t a, uint32_t b);            // GF(2)[x] modulo the polynomial, bit-reflected
uint32_t ZeroBytesOperator(uint64_t bytes);               // x^(8 * bytes) mod P
}  // namespace crc32c_internal

}  // namespace cairn
